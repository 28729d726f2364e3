// If the student doesn't join (seed 002): *Send "Are you joining?"*, *End as no-show*, the
// student's *The tutor didn't come*, and removing a student from a group session. The session
// view's `no_show` block says what the caller may do now; this panel re-reads the session when an
// action opens (`prompt_available_at`, `end_available_at`) and the page re-reads it on presence.

import { h, replace } from "./dom.js";
import { formatMoney, formatTime } from "./format.js";
import { activeStudents, isRemovable, isStudentOf, isTutorOf } from "./session.js";
import { busy, errorSlot, field, openDialog } from "./widgets.js";

const OPEN_STATES = ["accepted", "in_progress"];
const MAX_TIMER_MS = 2 ** 31 - 1;

function namesOf(session, ids) {
  const byId = new Map((session.students ?? []).map((s) => [s.id, s.name || s.id]));
  return ids.map((id) => byId.get(id) ?? id);
}

function joinNames(names) {
  if (names.length <= 1) return names[0] ?? "";
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** The no-show fee, when the server says one applies (the view may carry it). */
function feeSentence(session) {
  const info = session.no_show ?? {};
  if (typeof info.fee_cents === "number" && info.fee_cents > 0) {
    return `Each absent student is charged a no-show fee of ${formatMoney(info.fee_cents)}.`;
  }
  if (typeof info.fee_percent === "number" && info.fee_percent > 0) {
    return `Each absent student is charged a no-show fee of ${info.fee_percent}% of the session's price.`;
  }
  if (info.fee_percent === 0 || info.fee_cents === 0) return "Nobody is billed.";
  return "Nobody is billed for the lesson; a no-show fee is charged only if your platform has one.";
}

/**
 * The no-show controls for one session. `getSession()` answers the current view, `refresh()`
 * re-reads it, `onEnded(view)` runs after the session ended as a no-show (or the tutor's absence
 * was reported), `inClassroom` is true on the classroom page. Returns {el, update, destroy}.
 */
export function createNoShowPanel(app, { getSession, refresh, onEnded, inClassroom = false }) {
  const { api, me } = app;
  const errors = errorSlot();
  const body = h("div", { class: "noshow-body" });
  const el = h(
    "section",
    {
      class: `noshow${inClassroom ? " noshow-call" : " card"}`,
      "aria-labelledby": "noshow-heading",
      hidden: true,
    },
    body,
    errors.el,
  );
  let timers = [];
  let timerKey = null;

  const promptButton = h(
    "button",
    { type: "button", class: "btn btn-primary", onclick: sendPrompt },
    "Send “Are you joining?”",
  );
  const endButton = h(
    "button",
    { type: "button", class: "btn btn-danger", onclick: endAsNoShow },
    "End as no-show",
  );
  const reportButton = h(
    "button",
    { type: "button", class: "btn btn-secondary", onclick: reportTutor },
    "The tutor didn't come",
  );

  function schedule(session) {
    const info = session.no_show;
    const key = info ? `${info.prompt_available_at}|${info.end_available_at}` : null;
    if (key === timerKey) return;
    timerKey = key;
    for (const t of timers) clearTimeout(t);
    timers = [];
    if (!info || !OPEN_STATES.includes(session.state)) return;
    for (const at of [info.prompt_available_at, info.end_available_at]) {
      const wait = new Date(at) - new Date();
      if (wait > 0 && wait < MAX_TIMER_MS) timers.push(setTimeout(refresh, wait + 300));
    }
  }

  function update() {
    const session = getSession();
    schedule(session);
    const info = session?.no_show;
    if (!info || session.mode !== "online" || !OPEN_STATES.includes(session.state)) {
      el.hidden = true;
      return;
    }
    if (isTutorOf(session, me)) drawTutor(session, info);
    else if (isStudentOf(session, me)) drawStudent(session, info);
    else el.hidden = true;
  }

  function drawTutor(session, info) {
    const absent = info.absent ?? [];
    if (!absent.length) {
      el.hidden = true;
      return;
    }
    const now = new Date();
    const promptAt = new Date(info.prompt_available_at);
    const endAt = new Date(info.end_available_at);
    const names = namesOf(session, absent);
    const waiting = absent.filter((id) => !(info.prompted ?? []).includes(id));
    const content = [
      h(
        inClassroom ? "h2" : "h2",
        { id: "noshow-heading", class: inClassroom ? "noshow-title" : null },
        absent.length === 1
          ? `${names[0]} hasn't joined yet`
          : `${joinNames(names)} haven't joined yet`,
      ),
    ];
    const row = [];
    const hints = [];
    if (info.can_send_prompt && waiting.length) {
      row.push(promptButton);
    } else if (absent.length && !waiting.length) {
      row.push(h("span", { class: "pill pill-success sent-mark", role: "status" }, "Sent ✓"));
      hints.push("“Are you joining?” was sent through Messages.");
    } else if (promptAt > now) {
      hints.push(`You can send “Are you joining?” from ${formatTime(promptAt)}.`);
    }
    if (info.can_end) {
      row.push(endButton);
    } else if (endAt > now) {
      hints.push(`You can end the session as a no-show from ${formatTime(endAt)}.`);
    } else if (absent.length === activeStudents(session).length && !inClassroom) {
      hints.push("To end it as a no-show, start the session and wait in the classroom first.");
    } else if (absent.length < activeStudents(session).length) {
      hints.push("Some students came: remove the absent ones and complete the session instead.");
    }
    if (!row.length && !hints.length) {
      el.hidden = true;
      return;
    }
    content.push(
      h(
        "p",
        { class: "muted small" },
        "Give them 5–10 minutes: send a quick “Are you joining?” and, if nobody answers, end the session and message them to find a new time.",
      ),
    );
    if (row.length) content.push(h("div", { class: "noshow-actions" }, row));
    for (const hint of hints) content.push(h("p", { class: "field-hint noshow-hint" }, hint));
    replace(body, content);
    el.hidden = false;
  }

  function drawStudent(session, info) {
    if (!info.can_report_tutor_no_show) {
      el.hidden = true;
      return;
    }
    replace(
      body,
      h("h2", { id: "noshow-heading" }, "Your tutor hasn't come"),
      h(
        "p",
        { class: "muted small" },
        "You waited in the classroom. Report it and the session is marked missed; you won't be charged.",
      ),
      h("div", { class: "noshow-actions" }, reportButton),
    );
    el.hidden = false;
  }

  async function sendPrompt() {
    errors.clear();
    try {
      await busy(promptButton, () => api.sendNoShowPrompt(getSession().id));
      app.toast("success", "“Are you joining?” sent.");
    } catch (err) {
      errors.show(err);
    }
    await refresh();
  }

  async function endAsNoShow() {
    errors.clear();
    const session = getSession();
    const names = joinNames(namesOf(session, session.no_show?.absent ?? []));
    const confirmed = await confirmAction({
      title: "End as no-show?",
      message: `The session is marked missed because ${names || "your student"} did not come. ${feeSentence(session)} Everyone is emailed a link to find a new time.`,
      confirmLabel: "End as no-show",
    });
    if (!confirmed) return;
    try {
      const view = await busy(endButton, () => api.endAsNoShow(session.id));
      await onEnded(view);
    } catch (err) {
      if (err.code === "was_present") await refresh();
      errors.show(
        err.code === "not_in_classroom"
          ? "Join and wait in the classroom first: the attendance record is the evidence of a no-show."
          : err,
      );
    }
  }

  async function reportTutor() {
    errors.clear();
    const confirmed = await confirmAction({
      title: "Report that the tutor didn't come?",
      message:
        "The session is marked missed because the tutor did not come. You won't be charged, and everyone is emailed.",
      confirmLabel: "Report it",
    });
    if (!confirmed) return;
    try {
      const view = await busy(reportButton, () => api.reportTutorNoShow(getSession().id));
      await onEnded(view);
    } catch (err) {
      if (err.code === "was_present") await refresh();
      errors.show(
        err.code === "not_in_classroom"
          ? "Join the classroom and wait first: the attendance record is the evidence."
          : err,
      );
    }
  }

  update();
  return {
    el,
    update,
    destroy() {
      for (const t of timers) clearTimeout(t);
    },
  };
}

function confirmAction({ title, message, confirmLabel }) {
  const { done } = openDialog({
    title,
    build: (close) =>
      h(
        "div",
        { class: "dialog-body" },
        h("p", {}, message),
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(false) },
            "Keep waiting",
          ),
          h(
            "button",
            { type: "button", class: "btn btn-danger", onclick: () => close(true) },
            confirmLabel,
          ),
        ),
      ),
  });
  return done;
}

/** Students the tutor may remove now: booked, and never the last one left. */
export function removableStudents(session, me) {
  if (!isTutorOf(session, me) || !isRemovable(session)) return [];
  const active = activeStudents(session);
  return active.length > 1 ? active : [];
}

/**
 * The Remove dialog with an optional reason. `remove(reason)` performs it (HTTP or the
 * classroom's `remove_participant`). Resolves with its result, or null when dismissed.
 */
export function openRemoveDialog(student, remove) {
  const errors = errorSlot();
  const reason = h("textarea", {
    rows: "3",
    maxlength: "5000",
    placeholder: "e.g. Did not come and did not answer messages.",
  });
  const submit = h("button", { type: "submit", class: "btn btn-danger" }, "Remove");
  const name = student.name || student.id;
  const { done } = openDialog({
    title: `Remove ${name}?`,
    description: `${name} is taken out of the session and its classroom, is not billed and cannot rejoin. They and their parents are emailed.`,
    build: (close) => {
      const form = h(
        "form",
        { class: "dialog-body", novalidate: true },
        field("Reason (optional)", reason, "Shown in the session's history and in their email."),
        errors.el,
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(null) },
            "Keep them",
          ),
          submit,
        ),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        errors.clear();
        try {
          close(await busy(submit, () => remove(reason.value.trim())));
        } catch (err) {
          errors.show(err);
        }
      });
      return form;
    },
  });
  return done;
}
