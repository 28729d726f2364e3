// Reading a session view (docs/api.md) for display: names, times, labels, what the caller may do.

import { parseDate } from "./format.js";

export const STATE_LABELS = {
  requested: "Awaiting acceptance",
  accepted: "Accepted",
  in_progress: "In progress",
  completed: "Completed",
  declined: "Declined",
  cancelled: "Cancelled",
  missed: "Missed",
  awaiting_support: "Awaiting support",
};

export const ACCEPTANCE_LABELS = {
  pending: "Not answered yet",
  requested: "Not answered yet",
  accepted: "Accepted",
  declined: "Declined",
  withdrawn: "Withdrew",
  removed: "Removed",
};

export const STATE_REASON_LABELS = {
  student_no_show: "Missed – no-show",
  tutor_no_show: "Missed – tutor didn't come",
  not_accepted: "Missed – not accepted in time",
  logging_window_passed: "Missed – time not logged",
};

/** "Missed – no-show" for a missed session with a reason, else the state's label. */
export function stateReasonLabel(state, reason) {
  if (state === "missed" && STATE_REASON_LABELS[reason]) return STATE_REASON_LABELS[reason];
  return stateLabel(state);
}

export const INVOICE_KIND_LABELS = {
  lesson: "Lesson",
  no_show_fee: "No-show fee",
};

export function stateLabel(state) {
  return STATE_LABELS[state] ?? String(state ?? "Unknown");
}

export function acceptanceLabel(acceptance) {
  return ACCEPTANCE_LABELS[acceptance] ?? String(acceptance ?? "Unknown");
}

export function startOf(session) {
  return parseDate(session.starts_at);
}

export function endOf(session) {
  return (
    parseDate(session.ends_at) ??
    new Date(startOf(session).getTime() + (session.duration_minutes ?? 0) * 60_000)
  );
}

export function activeStudents(session) {
  return (session.students ?? []).filter((s) => !s.removed);
}

export function studentNames(session) {
  return activeStudents(session).map((s) => s.name || s.id);
}

export function isTutorOf(session, me) {
  return session.tutor?.id === me.userId;
}

export function isStudentOf(session, me) {
  return activeStudents(session).some((s) => s.id === me.userId);
}

export function myAcceptance(session, me) {
  return activeStudents(session).find((s) => s.id === me.userId)?.acceptance ?? null;
}

/** Sessions that are over for the calendar: ended, or finished one way or another. */
export function isPast(session, now = new Date()) {
  if (session.state === "in_progress") return false;
  if (
    ["completed", "declined", "cancelled", "missed", "awaiting_support"].includes(session.state)
  ) {
    return true;
  }
  return endOf(session) <= now;
}

function notStartedYet(session, now = new Date()) {
  return ["requested", "accepted"].includes(session.state) && startOf(session) > now;
}

export function canChangeSchedule(session, me) {
  return isTutorOf(session, me) && notStartedYet(session);
}

export function canCancel(session, me) {
  return (isTutorOf(session, me) || isStudentOf(session, me)) && notStartedYet(session);
}

export function mayRespond(session, me) {
  return (
    session.state === "requested" &&
    isStudentOf(session, me) &&
    !["accepted", "declined"].includes(myAcceptance(session, me))
  );
}

export function classroomOpen(session) {
  return Boolean(session.mode === "online" && session.classroom?.open);
}

/** The name of a participant from a presence entry or a person object. */
export function displayName(person) {
  return person?.name || person?.user_id || person?.id || "Someone";
}

/** Whether the tutor may still remove students (docs/api.md, Removing a student). */
export function isRemovable(session) {
  return ["requested", "accepted", "in_progress"].includes(session.state);
}

export function modeLabel(mode) {
  return mode === "in_person" ? "In person" : "Online";
}
