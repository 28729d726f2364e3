// The session details page: schedule, topic, participants and acceptance, live presence, the
// classroom button, Complete Session (live), attendance, and after completion the recap, the
// invoice and the rating & review.

import { h, replace } from "./dom.js";
import {
  formatDateTime,
  formatDay,
  formatMinutes,
  formatMoney,
  formatSeconds,
  formatTime,
  formatTimeRange,
} from "./format.js";
import { openCancelDialog, openCreateDialog, openRescheduleDialog } from "./forms.js";
import { openConversationWith } from "./messages.js";
import { createNoShowPanel, openRemoveDialog, removableStudents } from "./noshow.js";
import { openLogTimeDialog } from "./logtime.js";
import { renderPresenceList } from "./presence.js";
import { renderReview } from "./review.js";
import {
  acceptanceLabel,
  activeStudents,
  canCancel,
  canChangeSchedule,
  classroomOpen,
  endOf,
  isStudentOf,
  isTutorOf,
  INVOICE_KIND_LABELS,
  mayRespond,
  modeLabel,
  myAcceptance,
  startOf,
} from "./session.js";
import { busy, errorSlot, notice, pill, stateBadge } from "./widgets.js";

const COMPLETABLE = ["accepted", "in_progress"];

export async function renderDetails(app, root, [sessionId], isCurrent) {
  const { api, conn, me } = app;
  const errors = errorSlot();
  let session = await api.getSession(sessionId);
  if (!isCurrent()) return null;
  let participants = session.presence ?? [];
  let canComplete = Boolean(session.can_complete);
  let liveCanComplete = false; // once the socket tells us, trust its pushes over HTTP reads
  let outcomeKey = null;
  let refreshTimer = null;
  let openTimer = null;

  const header = h("div", { class: "page-header details-header" });
  const flash = h("div", { class: "flash-slot" });
  const classroomCard = h("section", {
    class: "card classroom-card",
    "aria-labelledby": "classroom-heading",
  });
  const participantsCard = h("section", {
    class: "card",
    "aria-labelledby": "participants-heading",
  });
  const scheduleCard = h("section", { class: "card", "aria-labelledby": "schedule-heading" });
  const attendanceCard = h("section", { class: "card", "aria-labelledby": "attendance-heading" });
  const outcome = h("div", { class: "outcome" });
  const missedBanner = h("div", { class: "missed-slot" });
  const messagesCard = h("section", {
    class: "card session-messages",
    "aria-labelledby": "session-messages-heading",
  });
  let booked = null; // the new time booked from the no-show banner
  const noShow = createNoShowPanel(app, {
    getSession: () => session,
    refresh: () => refresh(),
    onEnded: async (view) => {
      session = view;
      canComplete = false;
      app.toast(
        "success",
        view.state_reason === "tutor_no_show"
          ? "Marked missed; you won't be charged."
          : "The session was ended as a no-show.",
      );
      draw();
    },
  });
  const actions = h("div", { class: "details-actions" });

  // Persistent controls, updated in place so focus survives live updates.
  const enterButton = h("button", {
    type: "button",
    class: "btn btn-primary btn-large",
    onclick: enter,
  });
  const completeButton = h(
    "button",
    { type: "button", class: "btn btn-primary btn-large btn-complete", onclick: complete },
    "Complete Session",
  );
  const completeHint = h("p", { class: "field-hint", id: "complete-hint", "aria-live": "polite" });
  completeButton.setAttribute("aria-describedby", "complete-hint");
  const classroomStatus = h("p", { class: "classroom-status" });
  const presenceList = h("div", { class: "presence-region", "aria-live": "polite" });

  replace(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/sessions" }, "← All sessions")),
    header,
    flash,
    errors.el,
    h(
      "div",
      { class: "details-grid" },
      h(
        "div",
        { class: "details-main" },
        missedBanner,
        classroomCard,
        noShow.el,
        outcome,
        attendanceCard,
        messagesCard,
      ),
      h("div", { class: "details-side" }, scheduleCard, participantsCard, actions),
    ),
  );

  if (app.flash) {
    replace(flash, notice(app.flash.kind, app.flash.message));
    app.flash = null;
  }

  function isTutor() {
    return isTutorOf(session, me);
  }

  function draw() {
    drawHeader();
    drawClassroom();
    drawParticipants();
    drawSchedule();
    drawAttendance();
    drawOutcome();
    drawActions();
    drawMissed();
    drawMessages();
    noShow.update();
  }

  function drawHeader() {
    const start = startOf(session);
    replace(
      header,
      h(
        "div",
        {},
        h("h1", {}, session.topic || "Tutoring session"),
        h(
          "p",
          { class: "muted" },
          `${formatDay(start)} · ${formatTimeRange(start, endOf(session))} · ${modeLabel(session.mode)}`,
        ),
      ),
      stateBadge(session.state, session.state_reason),
    );
  }

  function drawClassroom() {
    const heading = h(
      "h2",
      { id: "classroom-heading" },
      session.mode === "online" ? "Online classroom" : "In-person session",
    );
    const body = [];
    const student = isStudentOf(session, me);
    const tutor = isTutor();
    if (session.mode === "online") {
      replace(classroomStatus, classroomStatusText());
      body.push(classroomStatus);
      const mayEnter =
        classroomOpen(session) && (tutor || (student && myAcceptance(session, me) === "accepted"));
      if (mayEnter) {
        enterButton.textContent = tutor ? "Start session" : "Join online classroom";
        body.push(enterButton);
      } else if (student && classroomOpen(session) && myAcceptance(session, me) !== "accepted") {
        body.push(
          notice(
            "warning",
            "Accept the session to join the classroom. A session started before it is accepted is marked as missed.",
          ),
        );
      }
      if (COMPLETABLE.includes(session.state) || participants.length) {
        renderPresenceList(presenceList, participants, {
          emptyText: "Nobody is in the classroom right now.",
        });
        body.push(h("h3", { class: "subheading" }, "In the classroom now"), presenceList);
      }
    } else {
      body.push(h("p", {}, "Meet in person; log the time here afterwards with Complete Session."));
    }
    if (tutor && COMPLETABLE.includes(session.state)) {
      completeButton.disabled = !canComplete;
      completeButton.setAttribute("aria-disabled", String(!canComplete));
      completeHint.textContent = canComplete
        ? "Everyone else has left: log the time and write the recap to complete the session."
        : completeBlockedReason();
      body.push(h("div", { class: "complete-box" }, completeButton, completeHint));
    }
    replace(classroomCard, heading, body);
  }

  function completeBlockedReason() {
    const others = participants.filter((p) => p.user_id !== me.userId);
    if (others.length) {
      const names = others.map((p) => p.name || p.user_id).join(", ");
      return `Available once everyone else has left the classroom (${names} still in).`;
    }
    if (activeStudents(session).some((s) => s.acceptance !== "accepted")) {
      return "Available once every student has accepted the session.";
    }
    if (startOf(session) > new Date() && session.state === "accepted") {
      return "Available once the session has started.";
    }
    return "Not available right now.";
  }

  function classroomStatusText() {
    const room = session.classroom;
    if (!room) return "";
    if (session.state === "completed") return "The session is completed; the classroom is closed.";
    if (["cancelled", "declined", "missed", "awaiting_support"].includes(session.state)) {
      return "The classroom is closed.";
    }
    if (room.open) return "The classroom is open.";
    const opens = new Date(room.opens_at);
    if (opens > new Date())
      return `The classroom opens at ${formatTime(opens)} on ${formatDay(opens)}.`;
    return "The classroom is closed.";
  }

  function drawParticipants() {
    const present = new Map(participants.map((p) => [p.user_id, p.status]));
    const removable = new Set(removableStudents(session, me).map((s) => s.id));
    const tutor = isTutor();
    const row = (person, role, acceptance) =>
      h(
        "li",
        { class: "person", dataset: { userId: person.id } },
        h(
          "span",
          { class: "person-name" },
          person.name || person.id,
          person.id === me.userId ? h("span", { class: "muted" }, " (you)") : null,
        ),
        h("span", { class: "muted small" }, role),
        h(
          "span",
          { class: "person-pills" },
          acceptance
            ? pill(
                acceptanceLabel(acceptance),
                acceptance === "accepted"
                  ? "success"
                  : ["declined", "removed"].includes(acceptance)
                    ? "danger"
                    : "warning",
              )
            : null,
          present.has(person.id)
            ? pill(
                present.get(person.id) === "reconnecting" ? "Reconnecting…" : "In the classroom",
                present.get(person.id) === "reconnecting" ? "warning" : "live",
              )
            : null,
        ),
        personActions(person, role, acceptance, removable, tutor),
      );
    const others = (session.students ?? []).filter((s) => s.removed);
    replace(
      participantsCard,
      h("h2", { id: "participants-heading" }, "Participants"),
      h(
        "ul",
        { class: "people", role: "list" },
        session.tutor ? row(session.tutor, "Tutor", null) : null,
        activeStudents(session).map((s) => row(s, "Student", s.acceptance)),
        others.map((s) => row(s, "Student", s.acceptance)),
      ),
    );
  }

  function personActions(person, role, acceptance, removable, tutor) {
    const buttons = [];
    const name = person.name || person.id;
    const messageable =
      person.id !== me.userId &&
      ((tutor && role === "Student") || (role === "Tutor" && isStudentOf(session, me)));
    if (messageable) {
      const label = role === "Tutor" ? "Message tutor" : `Message ${name}`;
      const button = h(
        "button",
        { type: "button", class: "btn btn-ghost btn-small", "aria-label": label },
        role === "Tutor" ? "Message tutor" : "Message",
      );
      button.addEventListener("click", () => messagePerson(button, person.id));
      buttons.push(button);
    }
    if (removable.has(person.id)) {
      const button = h(
        "button",
        {
          type: "button",
          class: "btn btn-ghost btn-small btn-ghost-danger",
          "aria-label": `Remove ${name}`,
        },
        "Remove",
      );
      button.addEventListener("click", () => removeStudent(person));
      buttons.push(button);
    }
    return buttons.length ? h("span", { class: "person-actions" }, buttons) : null;
  }

  async function messagePerson(button, userId) {
    try {
      await busy(button, () => openConversationWith(app, userId));
    } catch (err) {
      errors.show(err);
    }
  }

  async function removeStudent(student) {
    const view = await openRemoveDialog(student, (reason) =>
      api.removeParticipant(session.id, student.id, reason),
    );
    if (!view) return;
    session = view;
    canComplete = Boolean(view.can_complete) && COMPLETABLE.includes(view.state);
    app.toast("success", `${student.name || student.id} was removed from the session.`);
    draw();
  }

  function drawSchedule() {
    const start = startOf(session);
    const items = [
      ["Date", formatDay(start)],
      ["Time", formatTimeRange(start, endOf(session))],
      ["Duration", formatMinutes(session.duration_minutes)],
      ["Where", session.mode === "online" ? "Online classroom" : "In person"],
    ];
    if (session.series_id) items.push(["Repeats", "Part of a recurring series"]);
    if (session.topic) items.push(["Topic", session.topic]);
    if (isTutor() && session.notes) items.push(["Private notes", session.notes]);
    if (isTutor() && COMPLETABLE.includes(session.state) && session.logging_deadline) {
      items.push(["Log time by", formatDateTime(new Date(session.logging_deadline))]);
    }
    if (session.cancellation) {
      const c = session.cancellation;
      items.push(["Cancelled by", `${c.by?.name ?? "—"}${c.late ? " (late cancellation)" : ""}`]);
      if (c.reason) items.push(["Reason", c.reason]);
    }
    replace(
      scheduleCard,
      h("h2", { id: "schedule-heading" }, "Schedule"),
      h(
        "dl",
        { class: "facts" },
        items.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
    );
  }

  function drawAttendance() {
    const attendance = session.attendance;
    const rows = attendance?.participants ?? [];
    if (session.mode !== "online") {
      attendanceCard.hidden = true;
      return;
    }
    attendanceCard.hidden = false;
    const content = [h("h2", { id: "attendance-heading" }, "Attendance")];
    if (!rows.length) {
      content.push(h("p", { class: "muted" }, "Nobody has been in the classroom yet."));
    } else {
      content.push(
        h(
          "table",
          { class: "attendance" },
          h(
            "caption",
            { class: "visually-hidden" },
            "Time each participant spent in the classroom",
          ),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Participant"),
              h("th", { scope: "col" }, "Role"),
              h("th", { scope: "col" }, "Time in the classroom"),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((r) =>
              h(
                "tr",
                { dataset: { userId: r.user_id } },
                h("th", { scope: "row" }, r.name || r.user_id),
                h("td", {}, r.role === "tutor" ? "Tutor" : "Student"),
                h("td", {}, formatSeconds(r.seconds)),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "overlap" },
          `Tutor and student together: ${formatSeconds(attendance.overlap_seconds ?? 0)}`,
        ),
      );
      if (isTutor() && COMPLETABLE.includes(session.state)) {
        content.push(
          h(
            "p",
            { class: "muted small" },
            `Suggested log time: ${formatMinutes(attendance.suggested_minutes ?? 5)} (the time together, rounded up to 5 minutes).`,
          ),
        );
      }
    }
    replace(attendanceCard, content);
  }

  function drawMissed() {
    if (
      session.state !== "missed" ||
      !["student_no_show", "tutor_no_show"].includes(session.state_reason)
    ) {
      replace(missedBanner);
      return;
    }
    const tutor = isTutor();
    const studentNoShow = session.state_reason === "student_no_show";
    const title = studentNoShow ? "Missed – no-show" : "Missed – the tutor didn't come";
    let text;
    if (studentNoShow) {
      text = tutor
        ? "Your student didn't come, so the session was ended as a no-show. Message them and book a new time."
        : "This session was marked missed because you didn't join. Message your tutor to find a new time.";
    } else {
      text = isStudentOf(session, me)
        ? "Marked missed; you won't be charged. Message your tutor to find a new time."
        : "A student reported that you didn't come, so the session was marked missed. Nobody is billed.";
    }
    const buttons = [];
    if (tutor) {
      buttons.push(
        h(
          "button",
          { type: "button", class: "btn btn-primary", onclick: bookNewTime },
          "Book a new time",
        ),
      );
    }
    for (const student of tutor ? activeStudents(session) : []) {
      const name = student.name || student.id;
      const button = h("button", { type: "button", class: "btn btn-secondary" }, `Message ${name}`);
      button.addEventListener("click", () => messagePerson(button, student.id));
      buttons.push(button);
    }
    if (!tutor && isStudentOf(session, me) && session.tutor) {
      const button = h("button", { type: "button", class: "btn btn-secondary" }, "Message tutor");
      button.addEventListener("click", () => messagePerson(button, session.tutor.id));
      buttons.push(button);
    }
    replace(
      missedBanner,
      h(
        "section",
        { class: "card missed-banner", role: "status", "aria-labelledby": "missed-heading" },
        h("h2", { id: "missed-heading" }, title),
        h("p", {}, text),
        buttons.length ? h("div", { class: "missed-actions" }, buttons) : null,
        booked
          ? notice(
              "success",
              `New session booked for ${formatDateTime(startOf(booked))}. `,
              h(
                "a",
                { href: `#/sessions/${encodeURIComponent(booked.id)}` },
                "Open the new session",
              ),
              " · ",
              h("a", { href: "#/sessions" }, "Sessions"),
            )
          : null,
      ),
    );
    if (session.invoices?.length && outcomeKey !== `missed|${session.invoices.length}`) {
      outcomeKey = `missed|${session.invoices.length}`;
      const invoiceCard = h(
        "section",
        { class: "card invoice-card", "aria-labelledby": "invoice-heading" },
        h("h2", { id: "invoice-heading" }, "Invoice"),
      );
      replace(outcome, invoiceCard);
      loadInvoice(invoiceCard);
    }
  }

  async function bookNewTime() {
    const created = await openCreateDialog(app, [session], {
      title: "Book a new time",
      students: activeStudents(session),
      durationMinutes: session.duration_minutes,
      topic: session.topic ?? "",
    });
    if (!created?.length) return;
    booked = created[0];
    app.toast("success", "New session booked. The student has to accept it.");
    drawMissed();
  }

  function drawMessages() {
    const said = session.messages ?? [];
    if (!said.length) {
      messagesCard.hidden = true;
      return;
    }
    messagesCard.hidden = false;
    replace(
      messagesCard,
      h("h2", { id: "session-messages-heading" }, "Messages from this session"),
      h(
        "ol",
        { class: "messages session-message-list", role: "list" },
        said.map((m) =>
          h(
            "li",
            {
              class: `message${m.sender?.id === me.userId ? " mine" : ""}${m.kind === "prompt" ? " prompt" : ""}`,
              dataset: { messageId: String(m.id), kind: m.kind },
            },
            h(
              "div",
              { class: "message-meta" },
              h(
                "span",
                { class: "message-sender" },
                m.sender?.id === me.userId ? "You" : m.sender?.name || "Someone",
              ),
              m.created_at
                ? h(
                    "time",
                    { datetime: m.created_at, class: "muted" },
                    formatTime(new Date(m.created_at)),
                  )
                : null,
            ),
            h("p", { class: "message-text" }, m.text),
          ),
        ),
      ),
    );
  }

  function drawOutcome() {
    if (session.state === "missed") return; // drawMissed shows a no-show fee's invoice
    const key = `${session.state}|${session.logged_minutes}|${session.completed_at}`;
    if (key === outcomeKey) return;
    outcomeKey = key;
    if (session.state !== "completed") {
      replace(outcome);
      return;
    }
    const recapCard = h(
      "section",
      { class: "card recap-card", "aria-labelledby": "recap-heading" },
      h("h2", { id: "recap-heading" }, "Session recap"),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Logged time"),
        h("dd", { class: "logged-minutes" }, formatMinutes(session.logged_minutes ?? 0)),
        session.completed_at
          ? [h("dt", {}, "Completed"), h("dd", {}, formatDateTime(new Date(session.completed_at)))]
          : null,
      ),
      session.needs_review && isTutor()
        ? notice(
            "warning",
            "The logged time is well above the time measured in the classroom, so it will be reviewed.",
          )
        : null,
      h("h3", { class: "subheading" }, "What we covered"),
      h("p", { class: "recap-text" }, session.recap ?? ""),
    );
    const invoiceCard = h(
      "section",
      { class: "card invoice-card", "aria-labelledby": "invoice-heading" },
      h("h2", { id: "invoice-heading" }, "Invoice"),
      h("p", { class: "muted" }, "Loading the invoice…"),
    );
    const reviewCard = h("section", {
      class: "card review-card",
      "aria-labelledby": "review-heading",
    });
    replace(outcome, recapCard, invoiceCard, reviewCard);
    loadInvoice(invoiceCard);
    renderReview(app, reviewCard, session);
  }

  async function loadInvoice(card) {
    let invoices;
    try {
      const response = session.invoices ?? (await api.invoice(session.id));
      invoices = Array.isArray(response) ? response : (response?.invoices ?? [response]);
    } catch (err) {
      replace(
        card,
        h("h2", { id: "invoice-heading" }, "Invoice"),
        h(
          "p",
          { class: "muted" },
          err.code === "not_found"
            ? "No invoice for this session."
            : "The invoice could not be loaded.",
        ),
      );
      return;
    }
    const rows = invoices
      .filter(Boolean)
      .map((inv) =>
        h(
          "div",
          { class: "invoice", dataset: { invoiceId: inv.id, kind: inv.kind ?? "lesson" } },
          h(
            "dl",
            { class: "facts" },
            h("dt", {}, "For"),
            h("dd", { class: "invoice-kind" }, INVOICE_KIND_LABELS[inv.kind] ?? "Lesson"),
            h("dt", {}, "Student"),
            h("dd", {}, inv.student?.name ?? "—"),
            h("dt", {}, "Time"),
            h("dd", {}, formatMinutes(inv.minutes)),
            h("dt", {}, "Rate"),
            h("dd", {}, `${formatMoney(inv.rate_cents)} per hour`),
            h("dt", {}, "Amount"),
            h("dd", { class: "amount" }, formatMoney(inv.amount_cents)),
            isTutor() && typeof inv.tutor_earning_cents === "number"
              ? [h("dt", {}, "Your earnings"), h("dd", {}, formatMoney(inv.tutor_earning_cents))]
              : null,
          ),
          h(
            "p",
            { class: "muted small" },
            `Invoice ${String(inv.id).slice(0, 8).toUpperCase()}${inv.created_at ? ` · ${formatDateTime(new Date(inv.created_at))}` : ""}`,
          ),
        ),
      );
    replace(
      card,
      h("h2", { id: "invoice-heading" }, "Invoice"),
      rows.length ? rows : h("p", { class: "muted" }, "No invoice for this session."),
    );
  }

  function drawActions() {
    const buttons = [];
    if (mayRespond(session, me)) {
      const accept = h("button", { type: "button", class: "btn btn-primary" }, "Accept session");
      const decline = h("button", { type: "button", class: "btn btn-secondary" }, "Decline");
      accept.addEventListener("click", () =>
        act(accept, () => api.accept(session.id), "Session accepted."),
      );
      decline.addEventListener("click", () =>
        act(decline, () => api.decline(session.id), "Session declined."),
      );
      buttons.push(accept, decline);
    }
    if (canChangeSchedule(session, me)) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "btn btn-secondary",
            onclick: async () => {
              if (await openRescheduleDialog(app, session)) {
                app.toast(
                  "success",
                  "Session rescheduled. The student has to accept the new time.",
                );
                await refresh();
              }
            },
          },
          "Reschedule",
        ),
      );
    }
    if (canCancel(session, me)) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "btn btn-ghost btn-ghost-danger",
            onclick: async () => {
              if (await openCancelDialog(app, session)) {
                app.toast("success", "Session cancelled.");
                await refresh();
              }
            },
          },
          "Cancel session",
        ),
      );
    }
    replace(
      actions,
      buttons.length
        ? h(
            "section",
            { class: "card", "aria-label": "Manage this session" },
            h("div", { class: "stack" }, buttons),
          )
        : null,
    );
  }

  async function act(button, action, message) {
    try {
      await busy(button, action);
      app.toast("success", message);
      await refresh();
    } catch (err) {
      errors.show(err);
    }
  }

  function enter() {
    app.navigate(`#/sessions/${encodeURIComponent(session.id)}/classroom`);
  }

  async function complete() {
    if (!canComplete) return;
    const suggested = session.attendance?.suggested_minutes;
    const result = await openLogTimeDialog({
      title: "Complete session",
      submitLabel: "Log time",
      suggestedMinutes: suggested,
      overlapNote: suggested
        ? `Pre-selected from the time you and your student were in the classroom together.`
        : null,
      submit: (minutes, recap) => api.complete(session.id, minutes, recap),
    });
    if (result) {
      app.toast("success", "Session completed. The invoice has been sent.");
      await refresh();
    }
  }

  async function refresh() {
    try {
      const fresh = await api.getSession(sessionId);
      session = fresh;
      if (!liveCanComplete) canComplete = Boolean(fresh.can_complete);
      if (Array.isArray(fresh.presence)) {
        const news = conn.presence.accept({
          session_id: sessionId,
          version: fresh.presence_version ?? 0,
          participants: fresh.presence,
        });
        if (news) participants = news.participants;
      }
      if (!COMPLETABLE.includes(session.state)) canComplete = false;
      draw();
      scheduleOpenCheck();
    } catch (err) {
      errors.show(err);
    }
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 250);
  }

  function scheduleOpenCheck() {
    clearTimeout(openTimer);
    const room = session.classroom;
    if (!room || room.open || !COMPLETABLE.includes(session.state)) return;
    const wait = new Date(room.opens_at) - new Date();
    if (wait > 0 && wait < 2 ** 31 - 1) openTimer = setTimeout(refresh, wait + 500);
  }

  draw();
  scheduleOpenCheck();

  const unsubscribe = [
    conn.on("presence", (snapshot) => {
      if (snapshot.session_id !== sessionId) return;
      participants = snapshot.participants;
      drawClassroom();
      drawParticipants();
      refreshSoon();
    }),
    conn.on("can_complete", (data) => {
      if (data?.session_id !== sessionId) return;
      liveCanComplete = true;
      const next = Boolean(data.can_complete) && COMPLETABLE.includes(session.state);
      if (next !== canComplete) replace(flash); // an earlier "left the call" note is now stale
      canComplete = next;
      drawClassroom();
    }),
    conn.on("classroom_closed", (data) => {
      if (data?.session_id === sessionId) refresh();
    }),
    conn.on("removed", (data) => {
      if (data?.session_id !== sessionId) return;
      replace(flash, notice("warning", "The tutor removed you from this session."));
      refresh();
    }),
  ];

  try {
    const ack = await conn.watch(sessionId);
    if (ack.session) session = ack.session;
    const snap = conn.presence.get(sessionId);
    if (snap) participants = snap.participants;
    if (!liveCanComplete) canComplete = Boolean(ack.can_complete);
    liveCanComplete = true;
    if (isCurrent()) draw();
  } catch (err) {
    errors.show(err);
  }

  return async () => {
    clearTimeout(refreshTimer);
    clearTimeout(openTimer);
    noShow.destroy();
    for (const off of unsubscribe) off();
    await conn.unwatch(sessionId);
  };
}
