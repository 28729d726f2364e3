// The web client's entry point: sign-in from the link's token, one API client and one Socket.IO
// connection for the page, and a router on location.hash.

import { Api, ClassroomConnection, ServerError, tokenClaims } from "./protocol.js";
import { h, replace } from "./ui/dom.js";
import { describeError } from "./ui/errors.js";
import { renderSessions } from "./ui/sessions.js";
import { renderDetails } from "./ui/details.js";
import { renderClassroom } from "./ui/classroom.js";
import { renderMessages } from "./ui/messages.js";

const TOKEN_KEY = "classroom.token";

/** Take `?token=` from the link, keep it for this tab, and remove it from the address bar. */
function takeToken() {
  const url = new URL(location.href);
  const fromLink = url.searchParams.get("token");
  if (fromLink) {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const ROUTES = [
  { pattern: /^#\/sessions\/?$/, render: renderSessions, nav: "sessions" },
  { pattern: /^#\/sessions\/([^/]+)\/classroom\/?$/, render: renderClassroom, nav: "sessions" },
  { pattern: /^#\/sessions\/([^/]+)\/?$/, render: renderDetails, nav: "sessions" },
  { pattern: /^#\/messages\/?$/, render: renderMessages, nav: "messages" },
  { pattern: /^#\/messages\/([^/]+)\/?$/, render: renderMessages, nav: "messages" },
];

function signedOut(root, message) {
  replace(
    root,
    h(
      "section",
      { class: "card narrow signed-out" },
      h("h1", { tabindex: "-1" }, "Please sign in"),
      h("p", {}, message),
      h(
        "p",
        { class: "muted" },
        "Open this page from the link your tutoring platform gave you; it signs you in for this tab.",
      ),
    ),
  );
}

function start() {
  const root = document.getElementById("app");
  const token = takeToken();
  const me = token ? tokenClaims(token) : null;
  if (!me || !me.userId) {
    signedOut(root, "This link does not carry a valid sign-in.");
    return;
  }
  if (me.expiresAt && me.expiresAt < new Date()) {
    sessionStorage.removeItem(TOKEN_KEY);
    signedOut(root, "Your sign-in link has expired.");
    return;
  }

  const whoami = document.getElementById("whoami");
  replace(
    whoami,
    h("span", { class: "avatar", "aria-hidden": "true" }, me.name.slice(0, 1).toUpperCase() || "?"),
    h(
      "span",
      { class: "whoami-text" },
      h("span", { class: "whoami-name" }, me.name),
      h("span", { class: "whoami-role" }, me.role),
    ),
  );

  const api = new Api(token);
  const conn = new ClassroomConnection(token);
  const banner = document.getElementById("connection");
  conn.on("connection", ({ state, again }) => {
    if (state === "down") {
      banner.hidden = false;
      replace(banner, "Connection lost — reconnecting…");
    } else {
      banner.hidden = true;
      replace(banner);
      if (again) toast("success", "Connection restored.");
    }
  });
  conn.on("auth_error", (error) => {
    conn.disconnect();
    sessionStorage.removeItem(TOKEN_KEY);
    signedOut(root, describeError(error));
  });
  // Closing or leaving the tab is a clean leave (docs/protocol.md, Presence).
  addEventListener("pagehide", () => conn.disconnect());
  // A page restored from the back/forward cache has no connection left: start afresh.
  addEventListener("pageshow", (event) => {
    if (event.persisted) location.reload();
  });

  const app = { me, api, conn, toast, navigate, root, setUnreadTotal };

  // The unread count in the navigation, kept current by `message` and `conversation_read`.
  const unreadBadge = document.getElementById("unread-total");
  let unreadTimer = null;
  function setUnreadTotal(total) {
    const n = Number(total) || 0;
    unreadBadge.hidden = n === 0;
    unreadBadge.textContent = n > 99 ? "99+" : String(n);
    unreadBadge.setAttribute("aria-label", `${n} unread`);
  }
  function refreshUnread() {
    clearTimeout(unreadTimer);
    unreadTimer = setTimeout(async () => {
      try {
        const response = await api.listConversations();
        setUnreadTotal(response?.unread_total ?? 0);
      } catch {
        // The badge is a hint; the Messages page shows the counts.
      }
    }, 400);
  }
  conn.on("message", (message) => {
    if (message?.sender?.id !== me.userId) refreshUnread();
  });
  conn.on("conversation_read", refreshUnread);
  conn.on("connection", ({ state, again }) => {
    if (state === "up" && again) refreshUnread();
  });
  refreshUnread();
  let cleanup = null;
  let generation = 0;

  async function route() {
    const hash = location.hash || "#/sessions";
    const match = ROUTES.map((r) => ({ r, m: hash.match(r.pattern) })).find((x) => x.m);
    if (!match) {
      navigate("#/sessions", { replace: true });
      return;
    }
    generation += 1;
    const mine = generation;
    if (cleanup) {
      const previous = cleanup;
      cleanup = null;
      try {
        await previous();
      } catch (err) {
        console.warn("leaving the page failed", err);
      }
    }
    if (mine !== generation) return;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === match.r.nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.body.dataset.page = match.r.render.name;
    const container = h("div", { class: "page" });
    replace(root, container);
    const params = match.m.slice(1).map(decodeURIComponent);
    const isCurrent = () => mine === generation;
    try {
      cleanup = (await match.r.render(app, container, params, isCurrent)) ?? null;
    } catch (err) {
      if (!(err instanceof ServerError)) console.error(err);
      document.body.classList.remove("in-call");
      replace(
        container,
        h(
          "section",
          { class: "card narrow" },
          h("h1", { tabindex: "-1" }, "Something went wrong"),
          h("p", { role: "alert" }, describeError(err)),
          h("p", {}, h("a", { href: "#/sessions" }, "Back to sessions")),
        ),
      );
    }
    if (!isCurrent()) {
      if (cleanup) await cleanup();
      cleanup = null;
      return;
    }
    const heading = container.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }

  function navigate(hash, { replace: replaceEntry = false } = {}) {
    if (location.hash === hash) {
      route();
    } else if (replaceEntry) {
      history.replaceState(history.state, "", hash);
      route();
    } else {
      location.hash = hash;
    }
  }

  addEventListener("hashchange", route);
  if (!location.hash) history.replaceState(history.state, "", "#/sessions");
  route();
}

function toast(kind, message) {
  const region = document.getElementById("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, message);
  region.append(item);
  setTimeout(() => item.remove(), 6000);
}

start();
