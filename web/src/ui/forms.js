// Dialogs that change the calendar: create (one-time or recurring), reschedule, cancel.

import { h } from "./dom.js";
import { dayKey, formatDateTime, formatTimeRange, timeKey } from "./format.js";
import { activeStudents, endOf, startOf } from "./session.js";
import { busy, errorSlot, field, notice, openDialog } from "./widgets.js";

const DURATIONS = Array.from({ length: 18 }, (_, i) => (i + 1) * 5); // 5 … 90 minutes

function durationOptions(selected) {
  return DURATIONS.map((m) =>
    h(
      "option",
      { value: String(m), selected: m === selected },
      m < 60 ? `${m} minutes` : m === 60 ? "1 hour" : `1 h ${String(m - 60).padStart(2, "0")}`,
    ),
  );
}

/** Local date + time inputs to an ISO instant with offset. */
function toInstant(date, time) {
  const value = new Date(`${date}T${time}`);
  return Number.isNaN(value.getTime()) ? null : value.toISOString();
}

function nextHalfHour() {
  const d = new Date(Date.now() + 30 * 60_000);
  d.setMinutes(d.getMinutes() < 30 ? 30 : 60, 0, 0);
  return d;
}

/** Students the tutor can book: those already on the tutor's calendar. (The platform owns the
 * roster; the server has no roster route, so a new student is added by their platform id.) */
function rosterFrom(sessions) {
  const byId = new Map();
  for (const s of sessions) for (const st of activeStudents(s)) byId.set(st.id, st.name || st.id);
  return [...byId].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The Create session dialog. `prefill` (optional) books a new time for an earlier session:
 * {students: [{id, name}], durationMinutes, topic, title}.
 */
export function openCreateDialog(app, sessions, prefill = null) {
  const roster = rosterFrom(sessions);
  for (const student of prefill?.students ?? []) {
    if (!roster.some((r) => r.id === student.id)) {
      roster.push({ id: student.id, name: student.name || student.id });
    }
  }
  const chosen = new Set((prefill?.students ?? []).map((s) => s.id));
  const start = nextHalfHour();
  const errors = errorSlot();

  const studentBoxes = roster.map((s) =>
    h(
      "label",
      { class: "check" },
      h("input", {
        type: "checkbox",
        name: "student",
        value: s.id,
        checked: prefill ? chosen.has(s.id) : roster.length === 1,
      }),
      h("span", {}, s.name),
    ),
  );
  const otherStudent = h("input", {
    type: "text",
    name: "other_student",
    autocomplete: "off",
    placeholder: "e.g. student-42",
  });
  const date = h("input", { type: "date", name: "date", required: true, value: dayKey(start) });
  const time = h("input", {
    type: "time",
    name: "time",
    required: true,
    step: "300",
    value: timeKey(start),
  });
  const duration = h(
    "select",
    { name: "duration" },
    durationOptions(DURATIONS.includes(prefill?.durationMinutes) ? prefill.durationMinutes : 60),
  );
  const topic = h("input", {
    type: "text",
    name: "topic",
    maxlength: "500",
    value: prefill?.topic ?? "",
    placeholder: "e.g. Quadratic equations – solving and graphing",
  });
  const notes = h("textarea", { name: "notes", rows: "2", maxlength: "5000" });
  const online = h("input", { type: "radio", name: "mode", value: "online", checked: true });
  const inPerson = h("input", { type: "radio", name: "mode", value: "in_person" });
  const recurring = h("input", { type: "checkbox", name: "recurring" });
  const frequency = h(
    "select",
    { name: "frequency" },
    h("option", { value: "weekly" }, "Weekly"),
    h("option", { value: "biweekly" }, "Every two weeks"),
  );
  const endByCount = h("input", { type: "radio", name: "ends", value: "count", checked: true });
  const endByDate = h("input", { type: "radio", name: "ends", value: "until" });
  const count = h("input", {
    type: "number",
    name: "count",
    min: "2",
    max: "52",
    value: "6",
    "aria-label": "Number of sessions",
  });
  const until = h("input", {
    type: "date",
    name: "until",
    "aria-label": "Last date",
    value: dayKey(new Date(start.getTime() + 56 * 86_400_000)),
  });
  const recurrenceBox = h(
    "fieldset",
    { class: "recurrence", hidden: true },
    h("legend", {}, "Repeat"),
    field("Frequency", frequency),
    h(
      "div",
      { class: "inline-choice" },
      h("label", { class: "check" }, endByCount, h("span", {}, "For")),
      count,
      h("span", {}, "sessions"),
    ),
    h(
      "div",
      { class: "inline-choice" },
      h("label", { class: "check" }, endByDate, h("span", {}, "Until")),
      until,
    ),
    h(
      "p",
      { class: "field-hint" },
      "Each occurrence is its own booking: you can reschedule or cancel it on its own.",
    ),
  );
  recurring.addEventListener("change", () => {
    recurrenceBox.hidden = !recurring.checked;
  });

  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create");
  const { done } = openDialog({
    title: prefill?.title ?? "Create session",
    className: "dialog-wide",
    build: (close) => {
      const form = h(
        "form",
        { class: "dialog-body form-grid", novalidate: true },
        h(
          "fieldset",
          { class: "students" },
          h("legend", {}, "Student"),
          roster.length
            ? h("div", { class: "check-list" }, studentBoxes)
            : h(
                "p",
                { class: "muted" },
                "No students on your calendar yet: add one by their platform id.",
              ),
          field("Another student (platform id)", otherStudent),
        ),
        h(
          "div",
          { class: "row" },
          field("Date", date),
          field("Start time", time),
          field("Duration", duration),
        ),
        field(
          "Topic",
          topic,
          "Visible to the student. Specific topics help both of you arrive prepared.",
        ),
        field("Private notes", notes, "Only you can see these."),
        h(
          "fieldset",
          { class: "mode" },
          h("legend", {}, "Where"),
          h("label", { class: "check" }, online, h("span", {}, "Online classroom")),
          h("label", { class: "check" }, inPerson, h("span", {}, "In person")),
        ),
        h("label", { class: "check" }, recurring, h("span", {}, "Make recurring")),
        recurrenceBox,
        errors.el,
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(null) },
            "Cancel",
          ),
          submit,
        ),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        errors.clear();
        const ids = studentBoxes
          .map((l) => l.querySelector("input"))
          .filter((i) => i.checked)
          .map((i) => i.value);
        const other = otherStudent.value.trim();
        if (other && !ids.includes(other)) ids.push(other);
        const startsAt = toInstant(date.value, time.value);
        if (!ids.length) return errors.show("Choose at least one student.");
        if (!startsAt) return errors.show("Choose a date and a start time.");
        const payload = {
          student_ids: ids,
          starts_at: startsAt,
          duration_minutes: Number(duration.value),
          mode: inPerson.checked ? "in_person" : "online",
        };
        if (topic.value.trim()) payload.topic = topic.value.trim();
        if (notes.value.trim()) payload.notes = notes.value.trim();
        if (recurring.checked) {
          payload.recurrence = { frequency: frequency.value };
          if (endByDate.checked) {
            if (!until.value) return errors.show("Choose the date of the last session.");
            payload.recurrence.until = until.value;
          } else {
            payload.recurrence.count = Number(count.value);
          }
        }
        try {
          const response = await busy(submit, () => app.api.createSession(payload));
          close(Array.isArray(response?.sessions) ? response.sessions : [response]);
        } catch (err) {
          errors.show(err);
        }
      });
      return form;
    },
  });
  return done;
}

export function openRescheduleDialog(app, session) {
  const start = startOf(session);
  const errors = errorSlot();
  const date = h("input", { type: "date", required: true, value: dayKey(start) });
  const time = h("input", { type: "time", required: true, step: "300", value: timeKey(start) });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Reschedule");
  const { done } = openDialog({
    title: "Reschedule session",
    description: `Currently ${formatDateTime(start)} (${formatTimeRange(start, endOf(session))}). Students are notified and must accept the new time.`,
    build: (close) => {
      const form = h(
        "form",
        { class: "dialog-body", novalidate: true },
        h("div", { class: "row" }, field("New date", date), field("New start time", time)),
        errors.el,
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(null) },
            "Keep the time",
          ),
          submit,
        ),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        errors.clear();
        const startsAt = toInstant(date.value, time.value);
        if (!startsAt) return errors.show("Choose a date and a start time.");
        try {
          close(await busy(submit, () => app.api.reschedule(session.id, startsAt)));
        } catch (err) {
          errors.show(err);
        }
      });
      return form;
    },
  });
  return done;
}

export function openCancelDialog(app, session) {
  const errors = errorSlot();
  const reason = h("textarea", {
    rows: "3",
    maxlength: "5000",
    placeholder: "e.g. Illness — happy to find another time this week.",
  });
  const submit = h("button", { type: "submit", class: "btn btn-danger" }, "Cancel session");
  const late = startOf(session) - new Date() < 24 * 3600 * 1000;
  const { done } = openDialog({
    title: "Cancel session",
    description: `${session.topic || "Tutoring session"} · ${formatDateTime(startOf(session))}. Everyone in the session (and linked parents) is notified.`,
    build: (close) => {
      const form = h(
        "form",
        { class: "dialog-body", novalidate: true },
        late
          ? notice(
              "warning",
              "This session starts in less than 24 hours, so the cancellation is recorded as late.",
            )
          : null,
        field("Reason (optional)", reason),
        errors.el,
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(null) },
            "Keep the session",
          ),
          submit,
        ),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        errors.clear();
        try {
          close(await busy(submit, () => app.api.cancel(session.id, reason.value.trim())));
        } catch (err) {
          errors.show(err);
        }
      });
      return form;
    },
  });
  return done;
}
