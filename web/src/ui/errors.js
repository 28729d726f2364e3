// Server refusals as sentences a tutor or student understands. Unknown codes fall back to the
// server's own message (always written for people), then to a generic sentence.

const SENTENCES = {
  unauthenticated:
    "Your sign-in link has expired or is not valid. Open the session again from your tutoring platform.",
  forbidden: "Your account is not allowed to do that.",
  not_found: "This session could not be found, or you do not have access to it.",
  invalid_payload: "Something in the form is not valid. Please check it and try again.",
  invalid_state: "This session can no longer be changed that way.",
  conflict: "Someone changed this session at the same time. Reload the page and try again.",
  not_accepted:
    "Every participant has to accept the session first. A session started before it is accepted is marked as missed and cannot be billed.",
  not_a_participant: "You are not a participant of this session.",
  classroom_not_open: "The classroom is not open yet. It opens shortly before the start time.",
  classroom_closed: "The classroom is closed: the session has ended.",
  not_in_classroom: "You are no longer in the classroom. Join it again to continue.",
  participants_remain:
    "Your student is still in the classroom. You can log time once everyone else has left the call.",
  invalid_minutes: "Choose a time between 5 minutes and 1 h 30, in 5-minute steps.",
  recap_too_short: "The recap needs at least 150 characters.",
  grace_period_expired:
    "The 72-hour window for logging this session has passed. Please contact support to log it.",
  already_completed: "This session was already completed with a different time or recap.",
  already_reviewed: "You have already reviewed this session.",
  daily_limit: "A tutor and a student can have only one session per day.",
  outside_availability: "That time is outside the tutor's availability.",
  duration_too_long: "A session can last at most 1 h 30.",
  invalid_duration: "A session lasts 5 minutes to 1 h 30, in 5-minute steps.",
  overlap: "You already have a session at that time.",
  too_many_occurrences: "A recurring series can have at most 52 sessions.",
  start_in_past: "Pick a start time in the future.",
  not_a_student: "Sessions can only be booked with students.",
  media_unavailable:
    "Audio and video are turned off on this server. You are still in the classroom.",
  media_not_open: "Audio and video stopped because you are no longer in the classroom.",
  invalid_sdp:
    "Your browser and the server could not agree on audio and video. Reload the page to try again.",
  invalid_candidate:
    "The network path for audio and video could not be used. Reload the page to try again.",
  glare:
    "Audio and video were being set up from both sides at once. Reload the page if nothing appears.",
  no_pending_offer: "Audio and video got out of step. Reload the page if nothing appears.",
  wrong_connection: "This classroom is open in another tab; audio and video run in that tab.",
  message_too_long: "A message can be at most 2000 characters. Please shorten it.",
  too_early: "It is too early for that: give your student a few more minutes.",
  was_present:
    "The attendance record shows they came to the classroom, so this cannot be recorded as a no-show.",
  last_participant:
    "This is the only student left in the session. Cancel the session or end it as a no-show instead.",
  removed: "The tutor removed you from this session, so you cannot join its classroom.",
  unavailable: "The service is temporarily unavailable. Please try again in a moment.",
  internal_error: "Something went wrong on our side. Please try again.",
  network: "We could not reach the server. Check your connection and try again.",
  timeout: "The server took too long to answer. Check your connection and try again.",
};

/** The sentence to show for a ServerError (or any error). */
export function describeError(error) {
  if (!error) return SENTENCES.internal_error;
  const code = error.code;
  if (code === "too_early" && error.details?.available_at) {
    const at = new Date(error.details.available_at);
    if (!Number.isNaN(at.getTime())) {
      const time = at.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
      return `It is too early for that: it becomes available at ${time}.`;
    }
  }
  if (code && Object.hasOwn(SENTENCES, code)) return SENTENCES[code];
  if (error.message && error.name === "ServerError") return error.message;
  return SENTENCES.internal_error;
}
