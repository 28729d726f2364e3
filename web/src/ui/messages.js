// Messages: one conversation per tutor–student pair (docs/api.md, Messages). The Messages page
// lists conversations with unread badges and shows one conversation's history with a composer;
// the same thread is the classroom's chat panel. Text is always shown through text nodes.

import { MessageList, newClientId } from "../protocol.js";
import { h, nextId, replace } from "./dom.js";
import { formatDateTime, formatTime, initials, parseDate } from "./format.js";
import { describeError } from "./errors.js";
import { errorSlot, notice } from "./widgets.js";

export const MESSAGE_MAX = 2000;
const PAGE_SIZE = 50;

/** A message's length as the server counts it: code points after trimming. */
export function messageLength(text) {
  return [...String(text).trim()].length;
}

/** The other party of a conversation, from the caller's side. */
export function otherParty(conversation, me) {
  if (!conversation) return null;
  if (conversation.tutor?.id === me.userId) return conversation.student;
  if (conversation.student?.id === me.userId) return conversation.tutor;
  return null; // a parent or admin reads both
}

export function conversationTitle(conversation, me) {
  const other = otherParty(conversation, me);
  if (other) return other.name || other.id;
  return `${conversation.tutor?.name ?? "Tutor"} & ${conversation.student?.name ?? "Student"}`;
}

export function conversationHash(conversationId) {
  return `#/messages/${encodeURIComponent(conversationId)}`;
}

/** Open (or create) the conversation with a person and go to it on the Messages page. */
export async function openConversationWith(app, userId) {
  const conversation = await app.api.openConversation(userId);
  app.navigate(conversationHash(conversation.id));
  return conversation;
}

function dayLabel(date) {
  return date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
}

/**
 * One conversation's history and composer. `send(text, clientId)` (optional) replaces the HTTP
 * send, e.g. the classroom's `send_message`. Returns {el, focus, destroy}.
 */
export function createThread(
  app,
  { conversationId, conversation = null, sessionId = null, send = null, compact = false, label },
) {
  const { api, conn, me } = app;
  const list = new MessageList();
  let info = conversation;
  let hasMore = false;
  let loadingOlder = false;
  let destroyed = false;
  let lastRead = 0;
  let readTimer = null;
  let pending = 0;

  const errors = errorSlot();
  const olderButton = h(
    "button",
    {
      type: "button",
      class: "btn btn-ghost btn-small load-older",
      onclick: loadOlder,
      hidden: true,
    },
    "Load older messages",
  );
  const items = h("ol", { class: "messages", role: "list" });
  const empty = h("p", { class: "muted messages-empty" }, "No messages yet. Say hello!");
  const log = h(
    "div",
    {
      class: "message-log",
      role: "log",
      "aria-live": "polite",
      "aria-label": label ?? "Messages",
      tabindex: "0",
    },
    olderButton,
    empty,
    items,
  );

  const textareaId = nextId("composer");
  const counterId = nextId("counter");
  const textarea = h("textarea", {
    id: textareaId,
    class: "composer-input",
    rows: compact ? "2" : "3",
    placeholder: "Write a message…",
    "aria-describedby": counterId,
  });
  const counter = h(
    "span",
    { class: "char-count composer-count", id: counterId, "aria-live": "off" },
    `0 / ${MESSAGE_MAX}`,
  );
  const sendButton = h("button", { type: "submit", class: "btn btn-primary" }, "Send");
  const composer = h(
    "form",
    { class: "composer", novalidate: true, hidden: true },
    h("label", { for: textareaId, class: "visually-hidden" }, "Message"),
    textarea,
    h("div", { class: "composer-row" }, counter, sendButton),
  );
  const readOnly = h(
    "p",
    { class: "muted small read-only-note", hidden: true },
    "You can read this conversation; only the tutor and the student write in it.",
  );
  const el = h(
    "div",
    { class: `thread${compact ? " thread-compact" : ""}`, dataset: { conversationId } },
    log,
    errors.el,
    composer,
    readOnly,
  );

  function updateCounter() {
    const length = messageLength(textarea.value);
    counter.textContent = `${length} / ${MESSAGE_MAX}`;
    const over = length > MESSAGE_MAX;
    counter.classList.toggle("over", over);
    counter.classList.toggle("ok", length > 0 && !over);
    sendButton.disabled = length === 0 || over || pending > 0;
    if (over) counter.setAttribute("aria-live", "polite");
  }

  function drawPermissions() {
    const canWrite = Boolean(info?.can_write);
    composer.hidden = !canWrite;
    readOnly.hidden = canWrite || !info;
  }

  function messageItem(message) {
    const mine = message.sender?.id === me.userId;
    const at = parseDate(message.created_at);
    return h(
      "li",
      {
        class: `message${mine ? " mine" : ""}${message.kind === "prompt" ? " prompt" : ""}`,
        dataset: { messageId: String(message.id), kind: message.kind },
      },
      h(
        "div",
        { class: "message-meta" },
        h("span", { class: "message-sender" }, mine ? "You" : message.sender?.name || "Someone"),
        at
          ? h(
              "time",
              { datetime: message.created_at, title: formatDateTime(at), class: "muted" },
              `${dayLabel(at)} · ${formatTime(at)}`,
            )
          : null,
      ),
      h("p", { class: "message-text" }, message.text),
      message.session_id && !sessionId
        ? h(
            "a",
            {
              class: "message-session small",
              href: `#/sessions/${encodeURIComponent(message.session_id)}`,
            },
            message.kind === "prompt" ? "Sent about a session — open it" : "From a session",
          )
        : null,
    );
  }

  function draw({ keepScroll = false } = {}) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const previousHeight = log.scrollHeight;
    const messages = list.items;
    replace(items, messages.map(messageItem));
    empty.hidden = messages.length > 0;
    olderButton.hidden = !hasMore;
    if (keepScroll) log.scrollTop = log.scrollHeight - previousHeight + log.scrollTop;
    else if (atBottom || !keepScroll) log.scrollTop = log.scrollHeight;
  }

  function visible() {
    return document.visibilityState === "visible" && el.isConnected && !el.closest("[hidden]");
  }

  /** Mark everything shown as read while the conversation is on screen. */
  function markReadSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      if (destroyed || !visible() || !info) return;
      const newest = list.newestId;
      if (!newest || newest <= lastRead) return;
      const unreadFromOthers = list.items.some(
        (m) => m.id > lastRead && m.sender?.id !== me.userId,
      );
      if (!unreadFromOthers && !info.unread) {
        lastRead = newest;
        return;
      }
      try {
        const result = await api.markRead(conversationId, newest);
        lastRead = Math.max(lastRead, result?.last_read_id ?? newest);
        info.unread = result?.unread ?? 0;
      } catch {
        // Parents and admins may read; a failure to mark read only leaves a badge.
      }
    }, 300);
  }

  async function load() {
    try {
      const page = await api.listMessages(conversationId, { limit: PAGE_SIZE });
      if (destroyed) return;
      info = page.conversation ?? info;
      hasMore = Boolean(page.has_more);
      list.add(page.messages ?? []);
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
    drawPermissions();
    draw();
    markReadSoon();
  }

  async function loadOlder() {
    if (loadingOlder || !hasMore) return;
    loadingOlder = true;
    olderButton.disabled = true;
    try {
      const page = await api.listMessages(conversationId, {
        before: list.oldestId,
        limit: PAGE_SIZE,
      });
      hasMore = Boolean(page.has_more);
      list.add(page.messages ?? []);
      draw({ keepScroll: true });
    } catch (err) {
      errors.show(err);
    } finally {
      loadingOlder = false;
      olderButton.disabled = false;
    }
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    const length = messageLength(text);
    if (!length || length > MESSAGE_MAX) return;
    errors.clear();
    pending += 1;
    updateCounter();
    const clientId = newClientId();
    try {
      const message = send
        ? await send(text, clientId)
        : await api.sendMessage(conversationId, text, { clientId, sessionId });
      if (message) list.add([message]);
      lastRead = Math.max(lastRead, message?.id ?? 0); // sending moves our own marker
      textarea.value = "";
      draw();
    } catch (err) {
      errors.show(err);
    } finally {
      pending -= 1;
      updateCounter();
      textarea.focus();
    }
  });
  textarea.addEventListener("input", updateCounter);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  const onVisibility = () => {
    if (document.visibilityState === "visible") markReadSoon();
  };
  document.addEventListener("visibilitychange", onVisibility);
  const unsubscribe = [
    conn.on("message", (message) => {
      if (message?.conversation_id !== conversationId) return;
      if (list.add([message])) {
        draw();
        markReadSoon();
      }
    }),
  ];

  drawPermissions();
  updateCounter();
  load();

  return {
    el,
    focus: () => textarea.focus(),
    /** Call when the thread becomes visible again (e.g. its tab is selected). */
    shown: () => {
      draw();
      markReadSoon();
    },
    destroy() {
      destroyed = true;
      clearTimeout(readTimer);
      document.removeEventListener("visibilitychange", onVisibility);
      for (const off of unsubscribe) off();
    },
  };
}

/** The Messages page: `#/messages` (the list) and `#/messages/{id}` (one conversation). */
export async function renderMessages(app, root, [conversationId], isCurrent) {
  const { api, conn, me } = app;
  const errors = errorSlot();
  let conversations = [];
  let thread = null;

  const listRegion = h("nav", { class: "conversation-list", "aria-label": "Conversations" });
  const threadRegion = h("section", { class: "thread-pane", "aria-labelledby": "thread-heading" });
  const layout = h(
    "div",
    { class: `messages-layout${conversationId ? " has-thread" : ""}` },
    h("div", { class: "card conversations-card" }, listRegion),
    h("div", { class: "card thread-card" }, threadRegion),
  );
  replace(
    root,
    h(
      "div",
      { class: "page-header" },
      h(
        "div",
        {},
        h("h1", {}, "Messages"),
        h(
          "p",
          { class: "muted" },
          me.role === "parent"
            ? "What your children and their tutors have written to each other."
            : "Your conversations with your " + (me.role === "tutor" ? "students." : "tutors."),
        ),
      ),
    ),
    errors.el,
    layout,
  );

  async function loadList() {
    try {
      const response = await api.listConversations();
      conversations = response?.conversations ?? [];
      app.setUnreadTotal?.(response?.unread_total ?? 0);
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
    drawList();
  }

  function drawList() {
    if (!conversations.length) {
      replace(
        listRegion,
        h(
          "p",
          { class: "muted conversation-empty" },
          me.role === "tutor"
            ? "No conversations yet. Open a session and choose “Message” next to a student."
            : "No conversations yet.",
        ),
      );
      return;
    }
    replace(
      listRegion,
      h(
        "ul",
        { class: "conversations", role: "list" },
        conversations.map((c) => {
          const title = conversationTitle(c, me);
          const last = c.last_message;
          const current = c.id === conversationId;
          return h(
            "li",
            {},
            h(
              "a",
              {
                href: conversationHash(c.id),
                class: `conversation${current ? " current" : ""}${c.unread ? " unread" : ""}`,
                "aria-current": current ? "page" : null,
                dataset: { conversationId: c.id },
              },
              h("span", { class: "avatar small", "aria-hidden": "true" }, initials(title)),
              h(
                "span",
                { class: "conversation-text" },
                h("span", { class: "conversation-name" }, title),
                h(
                  "span",
                  { class: "conversation-last muted small" },
                  last
                    ? `${last.sender?.id === me.userId ? "You: " : ""}${last.text}`
                    : "No messages yet",
                ),
              ),
              c.unread
                ? h(
                    "span",
                    { class: "unread-badge", "aria-label": `${c.unread} unread` },
                    String(c.unread),
                  )
                : null,
            ),
          );
        }),
      ),
    );
  }

  async function showThread() {
    if (!conversationId) {
      replace(
        threadRegion,
        h("h2", { id: "thread-heading", class: "visually-hidden" }, "Conversation"),
        h("div", { class: "empty thread-placeholder" }, h("p", {}, "Choose a conversation.")),
      );
      return;
    }
    let page;
    try {
      page = await api.listMessages(conversationId, { limit: 1 });
    } catch (err) {
      replace(
        threadRegion,
        h("h2", { id: "thread-heading" }, "Conversation"),
        notice(
          "error",
          err.code === "not_found"
            ? "This conversation could not be found, or you do not have access to it."
            : describeError(err),
        ),
        h("p", {}, h("a", { href: "#/messages" }, "All conversations")),
      );
      return;
    }
    if (!isCurrent()) return;
    const conversation = page.conversation;
    const title = conversationTitle(conversation, me);
    thread = createThread(app, {
      conversationId,
      conversation,
      label: `Messages with ${title}`,
    });
    replace(
      threadRegion,
      h(
        "header",
        { class: "thread-header" },
        h("a", { href: "#/messages", class: "thread-back" }, "← Conversations"),
        h("h2", { id: "thread-heading" }, title),
      ),
      thread.el,
    );
  }

  const unsubscribe = [
    conn.on("message", (message) => {
      const known = conversations.find((c) => c.id === message?.conversation_id);
      if (!known) {
        loadList();
        return;
      }
      if (known.last_message?.id >= message.id) return;
      known.last_message = message;
      if (message.sender?.id !== me.userId && message.conversation_id !== conversationId) {
        known.unread = (known.unread ?? 0) + 1;
      }
      conversations.sort(
        (a, b) =>
          (parseDate(b.last_message?.created_at) ?? 0) -
          (parseDate(a.last_message?.created_at) ?? 0),
      );
      drawList();
    }),
    conn.on("conversation_read", (data) => {
      const known = conversations.find((c) => c.id === data?.conversation_id);
      if (known) {
        known.unread = data.unread ?? 0;
        drawList();
      }
    }),
  ];

  await Promise.all([loadList(), showThread()]);

  return () => {
    for (const off of unsubscribe) off();
    thread?.destroy();
  };
}
