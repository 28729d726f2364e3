// The Sessions page: the caller's upcoming and past sessions grouped by day, with state badges;
// tutors create, reschedule and cancel; students accept or decline.

import { h, replace } from "./dom.js";
import { dayKey, formatDay, formatMinutes, formatTimeRange } from "./format.js";
import { openCancelDialog, openCreateDialog, openRescheduleDialog } from "./forms.js";
import {
  acceptanceLabel,
  canCancel,
  canChangeSchedule,
  classroomOpen,
  endOf,
  isPast,
  isTutorOf,
  mayRespond,
  modeLabel,
  myAcceptance,
  startOf,
  studentNames,
} from "./session.js";
import { busy, errorSlot, pill, stateBadge } from "./widgets.js";

const PAST_DAYS = 120;
const AHEAD_DAYS = 365;

export function listOf(response) {
  if (Array.isArray(response)) return response;
  return response?.sessions ?? [];
}

export async function renderSessions(app, root) {
  const { me, api } = app;
  const isTutor = me.role === "tutor";
  let tab = sessionStorage.getItem("classroom.sessions-tab") === "past" ? "past" : "upcoming";
  let sessions = [];

  const errors = errorSlot();
  const listRegion = h("div", { class: "session-list", "aria-busy": "true" });
  const tabs = {
    upcoming: h(
      "button",
      {
        type: "button",
        role: "tab",
        id: "tab-upcoming",
        "aria-controls": "sessions-panel",
        onclick: () => select("upcoming"),
      },
      "Upcoming",
    ),
    past: h(
      "button",
      {
        type: "button",
        role: "tab",
        id: "tab-past",
        "aria-controls": "sessions-panel",
        onclick: () => select("past"),
      },
      "Past",
    ),
  };
  const tablist = h(
    "div",
    { class: "tabs", role: "tablist", "aria-label": "Which sessions", onkeydown: onTabKey },
    tabs.upcoming,
    tabs.past,
  );
  const panel = h("section", { id: "sessions-panel", role: "tabpanel" }, listRegion);

  const createButton = isTutor
    ? h("button", { type: "button", class: "btn btn-primary", onclick: create }, "Create session")
    : null;

  replace(
    root,
    h(
      "div",
      { class: "page-header" },
      h("div", {}, h("h1", {}, "Sessions"), h("p", { class: "muted" }, subtitle(me.role))),
      createButton,
    ),
    errors.el,
    tablist,
    panel,
  );

  function subtitle(role) {
    if (role === "tutor") return "Your tutoring calendar: create, reschedule and start sessions.";
    if (role === "student")
      return "Your tutoring sessions. Accept new requests and join the online classroom here.";
    if (role === "parent") return "Your children's tutoring sessions, recaps and invoices.";
    return "All tutoring sessions.";
  }

  function onTabKey(event) {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      select(tab === "upcoming" ? "past" : "upcoming");
      tabs[tab].focus();
    }
  }

  function select(which) {
    tab = which;
    sessionStorage.setItem("classroom.sessions-tab", which);
    draw();
  }

  async function load() {
    const now = new Date();
    const from = new Date(now.getTime() - PAST_DAYS * 86_400_000);
    const to = new Date(now.getTime() + AHEAD_DAYS * 86_400_000);
    listRegion.setAttribute("aria-busy", "true");
    try {
      sessions = listOf(await api.listSessions({ from, to }));
      errors.clear();
    } catch (err) {
      errors.show(err);
    } finally {
      listRegion.setAttribute("aria-busy", "false");
    }
    draw();
  }

  function draw() {
    for (const [name, button] of Object.entries(tabs)) {
      button.setAttribute("aria-selected", String(name === tab));
      button.tabIndex = name === tab ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", tabs[tab].id);
    const now = new Date();
    const chosen = sessions
      .filter((s) => isPast(s, now) === (tab === "past"))
      .sort((a, b) => (tab === "past" ? startOf(b) - startOf(a) : startOf(a) - startOf(b)));
    if (!chosen.length) {
      replace(listRegion, emptyState());
      return;
    }
    const days = new Map();
    for (const s of chosen) {
      const key = dayKey(startOf(s));
      if (!days.has(key)) days.set(key, []);
      days.get(key).push(s);
    }
    replace(
      listRegion,
      [...days.values()].map((group) =>
        h(
          "section",
          { class: "day-group", "aria-label": formatDay(startOf(group[0]), now) },
          h("h2", { class: "day-heading" }, formatDay(startOf(group[0]), now)),
          h(
            "ul",
            { class: "day-sessions", role: "list" },
            group.map((s) => h("li", {}, sessionCard(s))),
          ),
        ),
      ),
    );
  }

  function emptyState() {
    const text =
      tab === "upcoming"
        ? isTutor
          ? "No upcoming sessions. Create one to get started."
          : "No upcoming sessions yet. New session requests from your tutor appear here."
        : "No past sessions yet.";
    return h("div", { class: "empty" }, h("p", {}, text));
  }

  function sessionCard(s) {
    const start = startOf(s);
    const who = isTutorOf(s, me)
      ? `with ${studentNames(s).join(", ") || "no students"}`
      : `with ${s.tutor?.name ?? "your tutor"}`;
    const href = `#/sessions/${encodeURIComponent(s.id)}`;
    const actions = h("div", { class: "card-actions" });

    if (classroomOpen(s)) {
      const label = isTutorOf(s, me) ? "Start session" : "Join online classroom";
      if (isTutorOf(s, me) || myAcceptance(s, me) === "accepted") {
        actions.append(
          h("a", { class: "btn btn-primary btn-small", href: `${href}/classroom` }, label),
        );
      }
    }
    if (mayRespond(s, me)) {
      const accept = h("button", { type: "button", class: "btn btn-primary btn-small" }, "Accept");
      const decline = h(
        "button",
        { type: "button", class: "btn btn-secondary btn-small" },
        "Decline",
      );
      accept.addEventListener("click", () =>
        respond(accept, () => api.accept(s.id), "Session accepted."),
      );
      decline.addEventListener("click", () =>
        respond(decline, () => api.decline(s.id), "Session declined."),
      );
      actions.append(accept, decline);
    }
    if (canChangeSchedule(s, me)) {
      actions.append(
        h(
          "button",
          { type: "button", class: "btn btn-ghost btn-small", onclick: () => reschedule(s) },
          "Reschedule",
        ),
      );
    }
    if (canCancel(s, me)) {
      actions.append(
        h(
          "button",
          {
            type: "button",
            class: "btn btn-ghost btn-small btn-ghost-danger",
            onclick: () => cancel(s),
          },
          "Cancel",
        ),
      );
    }

    const meta = [formatMinutes(s.duration_minutes), modeLabel(s.mode)];
    if (s.series_id) meta.push("Recurring");
    const mine = myAcceptance(s, me);
    return h(
      "article",
      { class: `session-card state-${s.state}`, dataset: { sessionId: s.id } },
      h(
        "div",
        { class: "session-time" },
        h("span", { class: "time-range" }, formatTimeRange(start, endOf(s))),
        h("span", { class: "muted small" }, meta.join(" · ")),
      ),
      h(
        "div",
        { class: "session-main" },
        h("h3", { class: "session-title" }, h("a", { href }, s.topic || "Tutoring session")),
        h("p", { class: "muted" }, who),
        s.state === "requested" && mine && mine !== "accepted"
          ? pill(`You: ${acceptanceLabel(mine)}`, "warning")
          : null,
      ),
      h("div", { class: "session-side" }, stateBadge(s.state, s.state_reason), actions),
    );
  }

  async function respond(button, action, message) {
    try {
      await busy(button, action);
      app.toast("success", message);
      await load();
    } catch (err) {
      errors.show(err);
    }
  }

  async function create() {
    const created = await openCreateDialog(app, sessions);
    if (created) {
      const count = created.length;
      app.toast("success", count > 1 ? `${count} sessions created.` : "Session created.");
      await load();
    }
  }

  async function reschedule(s) {
    if (await openRescheduleDialog(app, s)) {
      app.toast("success", "Session rescheduled. The student has to accept the new time.");
      await load();
    }
  }

  async function cancel(s) {
    if (await openCancelDialog(app, s)) {
      app.toast("success", "Session cancelled.");
      await load();
    }
  }

  await load();
  const timer = setInterval(draw, 60_000);
  return () => clearInterval(timer);
}
