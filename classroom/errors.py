"""One error tree. Every refusal has a stable ``code``, a sentence for people, and an HTTP status.

The domain raises these; transports convert them once: HTTP into
``{"error": {"code", "message"}}`` with ``status``; Socket.IO into ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ClassroomError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class Unauthenticated(ClassroomError):
    code = "unauthenticated"
    status = 401
    default_message = "A valid access token is required."


class Forbidden(ClassroomError):
    code = "forbidden"
    status = 403
    default_message = "You are not allowed to do that."


class NotFound(ClassroomError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class InvalidPayload(ClassroomError):
    code = "invalid_payload"
    status = 400
    default_message = "The request is malformed."


class InvalidState(ClassroomError):
    code = "invalid_state"
    status = 409
    default_message = "The session is not in a state that allows this."


class Conflict(ClassroomError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class NotAccepted(ClassroomError):
    code = "not_accepted"
    status = 409
    default_message = "Every participant must accept the session first."


class ParticipantsRemain(ClassroomError):
    code = "participants_remain"
    status = 409
    default_message = (
        "Other participants are still in the classroom; the session can be completed "
        "once everyone else has left."
    )


class NotAParticipant(ClassroomError):
    code = "not_a_participant"
    status = 403
    default_message = "You are not a participant of this session."


class ClassroomClosed(ClassroomError):
    code = "classroom_closed"
    status = 409
    default_message = "The classroom is closed."


class NotInClassroom(ClassroomError):
    code = "not_in_classroom"
    status = 409
    default_message = "Join the classroom first."


class ClassroomNotOpen(ClassroomError):
    code = "classroom_not_open"
    status = 409
    default_message = "The classroom is not open yet."


class InvalidMinutes(ClassroomError):
    code = "invalid_minutes"
    status = 422
    default_message = "Logged time must be 5 to 90 minutes in 5-minute steps."


class RecapTooShort(ClassroomError):
    code = "recap_too_short"
    status = 422
    default_message = "The recap must be at least 150 characters."


class GracePeriodExpired(ClassroomError):
    code = "grace_period_expired"
    status = 409
    default_message = "The 72-hour logging window has passed; please contact support."


class DailyLimit(ClassroomError):
    code = "daily_limit"
    status = 409
    default_message = "A tutor and student can have at most one session per day."


class OutsideAvailability(ClassroomError):
    code = "outside_availability"
    status = 422
    default_message = "The session must start and end inside the tutor's availability."


class DurationTooLong(ClassroomError):
    code = "duration_too_long"
    status = 422
    default_message = "A session lasts at most 90 minutes."


class Overlap(ClassroomError):
    code = "overlap"
    status = 409
    default_message = "The tutor already has a session at that time."


class WrongNode(ClassroomError):
    """The classroom's media runs on another server process: the client reconnects to ``url``."""

    code = "wrong_node"
    status = 421
    default_message = (
        "This classroom runs on another server; reconnect to the address given and join again."
    )

    def __init__(self, message: str | None = None, *, url: str) -> None:
        super().__init__(message, url=url)


class ServiceUnavailable(ClassroomError):
    code = "unavailable"
    status = 503
    default_message = "A backing service is unavailable."


class InternalError(ClassroomError):
    code = "internal_error"
    status = 500
    default_message = "Something went wrong on the server."


class InvalidDuration(ClassroomError):
    code = "invalid_duration"
    status = 422
    default_message = "A session lasts 5 to 90 minutes, in 5-minute steps."


class TooManyOccurrences(ClassroomError):
    code = "too_many_occurrences"
    status = 422
    default_message = "A recurring series has at most 52 sessions."


class StartInPast(ClassroomError):
    code = "start_in_past"
    status = 422
    default_message = "A session can only be moved to a time in the future."


class NotAStudent(ClassroomError):
    code = "not_a_student"
    status = 422
    default_message = "Sessions are booked with students only."


class AlreadyCompleted(ClassroomError):
    code = "already_completed"
    status = 409
    default_message = "The session was already completed with a different time or recap."


class AlreadyReviewed(ClassroomError):
    code = "already_reviewed"
    status = 409
    default_message = "You have already reviewed this session."


class TooEarly(ClassroomError):
    code = "too_early"
    status = 409
    default_message = "It is too early for that; wait a few more minutes."


class WasPresent(ClassroomError):
    code = "was_present"
    status = 409
    default_message = "The attendance record shows this participant was in the classroom."


class LastParticipant(ClassroomError):
    code = "last_participant"
    status = 409
    default_message = (
        "This is the session's last student; cancel the session or end it as a no-show instead."
    )


class Removed(ClassroomError):
    code = "removed"
    status = 403
    default_message = "The tutor removed you from this session."


class MessageTooLong(ClassroomError):
    code = "message_too_long"
    status = 422
    default_message = "A message is at most 2000 characters."
