// Talking to the classroom server: the HTTP API (docs/api.md) and the /classroom Socket.IO
// namespace (docs/protocol.md). No DOM in this module.

import { io } from "/vendor/socket.io/socket.io.esm.min.js";

const DEFAULT_TIMEOUT_MS = 10_000;

/** A refusal from the server (or a transport failure), with the server's stable `code`. */
export class ServerError extends Error {
  constructor(code, message, { status = 0, details = {} } = {}) {
    super(message || code);
    this.name = "ServerError";
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** The claims of a platform token, read without checking the signature (the server checks it). */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(base64), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const claims = JSON.parse(json);
    return {
      userId: String(claims.sub ?? ""),
      role: String(claims.role ?? ""),
      name: String(claims.name ?? ""),
      email: claims.email ? String(claims.email) : null,
      expiresAt: typeof claims.exp === "number" ? new Date(claims.exp * 1000) : null,
    };
  } catch {
    return null;
  }
}

/** The HTTP API. Every call sends `Authorization: Bearer <token>`. */
export class Api {
  constructor(token, { baseUrl = "" } = {}) {
    this.token = token;
    this.baseUrl = baseUrl;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.baseUrl + path, init);
    } catch {
      throw new ServerError("network", "The server could not be reached.");
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const { code, message, ...details } = error;
      throw new ServerError(code || `http_${response.status}`, message || response.statusText, {
        status: response.status,
        details,
      });
    }
    return data;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }

  // -- sessions ---------------------------------------------------------------------------------
  listSessions({ from, to } = {}) {
    const query = new URLSearchParams();
    if (from) query.set("from", from.toISOString());
    if (to) query.set("to", to.toISOString());
    const suffix = query.size ? `?${query}` : "";
    return this.get(`/api/sessions${suffix}`);
  }

  getSession(id) {
    return this.get(`/api/sessions/${encodeURIComponent(id)}`);
  }

  createSession(payload) {
    return this.post("/api/sessions", payload);
  }

  accept(id) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/accept`);
  }

  decline(id) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/decline`);
  }

  reschedule(id, startsAt) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/reschedule`, {
      starts_at: startsAt,
    });
  }

  cancel(id, reason) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/cancel`, reason ? { reason } : {});
  }

  complete(id, minutes, recap) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/complete`, { minutes, recap });
  }

  invoice(id) {
    return this.get(`/api/sessions/${encodeURIComponent(id)}/invoice`);
  }

  review(id, rating, text) {
    const body = { rating };
    if (text) body.text = text;
    return this.post(`/api/sessions/${encodeURIComponent(id)}/review`, body);
  }

  // -- no-shows and removing a student (docs/api.md, No-shows; Removing a student) ---------------
  sendNoShowPrompt(id, studentIds) {
    const body = studentIds?.length ? { student_ids: studentIds } : {};
    return this.post(`/api/sessions/${encodeURIComponent(id)}/no-show/prompt`, body);
  }

  endAsNoShow(id, studentIds) {
    const body = studentIds?.length ? { student_ids: studentIds } : {};
    return this.post(`/api/sessions/${encodeURIComponent(id)}/no-show`, body);
  }

  reportTutorNoShow(id) {
    return this.post(`/api/sessions/${encodeURIComponent(id)}/tutor-no-show`, {});
  }

  removeParticipant(id, studentId, reason) {
    return this.post(
      `/api/sessions/${encodeURIComponent(id)}/participants/${encodeURIComponent(studentId)}/remove`,
      reason ? { reason } : {},
    );
  }

  // -- messages (docs/api.md, Messages) ---------------------------------------------------------
  listConversations(limit) {
    return this.get(`/api/conversations${limit ? `?limit=${Number(limit)}` : ""}`);
  }

  openConversation(withUserId) {
    return this.post("/api/conversations", { with: withUserId });
  }

  listMessages(conversationId, { before, limit } = {}) {
    const query = new URLSearchParams();
    if (before) query.set("before", String(before));
    if (limit) query.set("limit", String(limit));
    const suffix = query.size ? `?${query}` : "";
    return this.get(`/api/conversations/${encodeURIComponent(conversationId)}/messages${suffix}`);
  }

  sendMessage(conversationId, text, { clientId, sessionId } = {}) {
    const body = { text };
    if (clientId) body.client_id = clientId;
    if (sessionId) body.session_id = sessionId;
    return this.post(`/api/conversations/${encodeURIComponent(conversationId)}/messages`, body);
  }

  markRead(conversationId, upTo) {
    return this.post(
      `/api/conversations/${encodeURIComponent(conversationId)}/read`,
      upTo ? { up_to: upTo } : {},
    );
  }
}

/** A random id for a send, so a retried send is done once (`client_id`). */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** Messages of one conversation, kept sorted by id with no duplicates (docs/protocol.md). */
export class MessageList {
  constructor() {
    this.byId = new Map();
  }

  /** Adds messages; returns true when any was new. */
  add(messages) {
    let news = false;
    for (const message of messages) {
      if (!message || typeof message.id !== "number" || this.byId.has(message.id)) continue;
      this.byId.set(message.id, message);
      news = true;
    }
    return news;
  }

  get items() {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  get oldestId() {
    let oldest = null;
    for (const id of this.byId.keys()) if (oldest === null || id < oldest) oldest = id;
    return oldest;
  }

  get newestId() {
    let newest = null;
    for (const id of this.byId.keys()) if (newest === null || id > newest) newest = id;
    return newest;
  }
}

/**
 * Keeps the newest presence snapshot of each classroom: a snapshot older than the highest
 * `version` seen is dropped (docs/protocol.md, Presence).
 */
export class PresenceTracker {
  constructor() {
    this.latest = new Map();
  }

  /** Returns the snapshot when it is news, or null when it is stale. */
  accept(snapshot) {
    if (!snapshot || typeof snapshot.version !== "number") return null;
    const current = this.latest.get(snapshot.session_id);
    if (current && snapshot.version < current.version) return null;
    if (current && snapshot.version === current.version) return null;
    const copy = {
      session_id: snapshot.session_id,
      version: snapshot.version,
      participants: Array.isArray(snapshot.participants) ? snapshot.participants : [],
    };
    this.latest.set(snapshot.session_id, copy);
    return copy;
  }

  get(sessionId) {
    return this.latest.get(sessionId) ?? null;
  }

  forget(sessionId) {
    this.latest.delete(sessionId);
  }
}

const LOCAL_OR_BUILT_IN = [
  "presence",
  "can_complete",
  "classroom_closed",
  "removed",
  "connection",
  "auth_error",
  "rejoined",
];

/**
 * One Socket.IO connection to `/classroom` for the whole page. It remembers which sessions the
 * page watches and which classroom it is in, and says so again after a reconnection, so a dropped
 * connection that comes back within the grace period is seen by nobody (docs/protocol.md).
 */
export class ClassroomConnection {
  constructor(token, { url = "" } = {}) {
    this.token = token;
    this.presence = new PresenceTracker();
    this.watching = new Set();
    this.joined = null;
    this.handlers = new Map();
    this.everConnected = false;
    this._open(url);
  }

  /** Open the Socket.IO connection to `url` (this origin when empty) with every listener. */
  _open(url) {
    this.socket = io(`${url}/classroom`, {
      auth: { token: this.token },
      transports: ["websocket"],
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
    });
    this.socket.on("connect", () => this._connected());
    this.socket.on("disconnect", (reason) =>
      this._emitLocal("connection", { state: "down", reason }),
    );
    this.socket.on("connect_error", (err) => {
      const data = err && err.data;
      if (data && data.code) {
        this._emitLocal("auth_error", new ServerError(data.code, data.message));
      } else {
        this._emitLocal("connection", { state: "down", reason: "connect_error" });
      }
    });
    this.socket.on("presence", (snapshot) => {
      const news = this.presence.accept(snapshot);
      if (news) this._emitLocal("presence", news);
    });
    for (const event of ["can_complete", "classroom_closed", "removed"]) {
      this.socket.on(event, (data) => {
        if (event !== "can_complete" && this.joined === data?.session_id) this.joined = null;
        this._emitLocal(event, data);
      });
    }
    for (const event of this.handlers.keys()) {
      if (!LOCAL_OR_BUILT_IN.includes(event)) {
        this.socket.on(event, (data) => this._emitLocal(event, data));
      }
    }
  }

  /**
   * With several server processes, a classroom's audio and video live on one of them: a join
   * elsewhere is refused `wrong_node` with that process's URL. Move this page's connection there
   * (watches are renewed by `_connected`); every other event works on any process.
   */
  async _moveTo(url) {
    const old = this.socket;
    old.removeAllListeners();
    old.disconnect();
    this._open(String(url).replace(/\/$/, ""));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ServerError("timeout", "The classroom's server did not answer in time.")),
        DEFAULT_TIMEOUT_MS,
      );
      this.socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  get connected() {
    return this.socket.connected;
  }

  /** Subscribe to a server event (or a local one: connection, auth_error, rejoined). */
  on(event, handler) {
    if (!this.handlers.has(event)) {
      this.handlers.set(event, new Set());
      if (!LOCAL_OR_BUILT_IN.includes(event)) {
        this.socket.on(event, (data) => this._emitLocal(event, data));
      }
    }
    this.handlers.get(event).add(handler);
    return () => this.handlers.get(event)?.delete(handler);
  }

  _emitLocal(event, data) {
    for (const handler of this.handlers.get(event) ?? []) {
      try {
        handler(data);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  async _connected() {
    const again = this.everConnected;
    this.everConnected = true;
    this._emitLocal("connection", { state: "up", again });
    if (!again) return;
    for (const sessionId of this.watching) {
      this.call("watch", { session_id: sessionId })
        .then((ack) => this._snapshotFromAck(sessionId, ack))
        .catch(() => {});
    }
    if (this.joined) {
      const sessionId = this.joined;
      try {
        const ack = await this.call("join", { session_id: sessionId });
        this._snapshotFromAck(sessionId, ack);
        this._emitLocal("rejoined", { session_id: sessionId, ack });
      } catch (err) {
        if (err.code === "wrong_node" && err.details?.url) {
          // The classroom's home moved (its process died): rejoin there; `_connected` runs again.
          this._moveTo(err.details.url).catch((moveErr) => {
            this.joined = null;
            this._emitLocal("rejoined", { session_id: sessionId, error: moveErr });
          });
          return;
        }
        this.joined = null;
        this._emitLocal("rejoined", { session_id: sessionId, error: err });
      }
    }
  }

  _snapshotFromAck(sessionId, ack) {
    const news = this.presence.accept({
      session_id: sessionId,
      version: ack.version,
      participants: ack.participants,
    });
    if (news) this._emitLocal("presence", news);
    return news;
  }

  /** Emit with an acknowledgement; resolves with the ack, rejects with a ServerError. */
  async call(event, payload = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
    let ack;
    try {
      ack = await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch {
      throw new ServerError("timeout", "The server did not answer in time.");
    }
    if (!ack || ack.ok !== true) {
      const error = (ack && ack.error) || {};
      const { code, message, ...details } = error;
      throw new ServerError(code || "internal_error", message, { details });
    }
    return ack;
  }

  async watch(sessionId) {
    this.watching.add(sessionId);
    const ack = await this.call("watch", { session_id: sessionId });
    this._snapshotFromAck(sessionId, ack);
    return ack;
  }

  async unwatch(sessionId) {
    this.watching.delete(sessionId);
    if (!this.connected) return;
    try {
      await this.call("unwatch", { session_id: sessionId });
    } catch {
      // Nothing to undo: the server forgets watchers when they disconnect.
    }
  }

  async join(sessionId) {
    let ack;
    try {
      ack = await this.call("join", { session_id: sessionId });
    } catch (err) {
      if (err.code !== "wrong_node" || !err.details?.url) throw err;
      await this._moveTo(err.details.url);
      ack = await this.call("join", { session_id: sessionId });
    }
    this.joined = sessionId;
    this._snapshotFromAck(sessionId, ack);
    return ack;
  }

  async leaveCall() {
    this.joined = null;
    return this.call("leave_call", {});
  }

  async logTimeAndLeave(minutes, recap) {
    const ack = await this.call("log_time_and_leave", { minutes, recap });
    this.joined = null;
    return ack;
  }

  /** The classroom's chat panel: a message to the tutor, or (tutor) to the student `to`. */
  async sendMessage(text, { to, clientId } = {}) {
    const payload = { text };
    if (to) payload.to = to;
    if (clientId) payload.client_id = clientId;
    const ack = await this.call("send_message", payload);
    return ack.message;
  }

  /** The tutor removes a student from the classroom's session. */
  async removeParticipant(userId, reason) {
    const payload = { user_id: userId };
    if (reason) payload.reason = reason;
    const ack = await this.call("remove_participant", payload);
    return ack.session;
  }

  /** A clean leave: the server announces it at once (used on `pagehide`). */
  disconnect() {
    this.socket.disconnect();
  }
}
