"""No-shows, as pure rules (standard library and the error tree only).

From ``prompt_minutes`` after the start (default 5) the tutor may send an absent student the
prepared *Are you joining?*; from ``end_minutes`` (default 10) the tutor, having waited in the
classroom, may end the session as a student no-show, and a student who waited may report that
the tutor never came. The attendance record is the evidence: a no-show is never declared for
someone with a stay in the classroom. Only online sessions that are ``accepted`` or
``in_progress`` qualify; the end is possible until the logging deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from classroom.errors import (
    ClassroomClosed,
    ClassroomError,
    Forbidden,
    GracePeriodExpired,
    InvalidState,
    NotAParticipant,
    NotInClassroom,
    TooEarly,
    WasPresent,
)
from classroom.sessions.model import Split, State, Stay, charge_cents, platform_fee_cents

STUDENT_NO_SHOW = "student_no_show"
TUTOR_NO_SHOW = "tutor_no_show"
REASONS = frozenset({STUDENT_NO_SHOW, TUTOR_NO_SHOW})
OPEN_STATES = frozenset({State.ACCEPTED, State.IN_PROGRESS})
PROMPT_CLIENT_ID = "no-show-prompt:{session_id}"  # one prompt per student per session


@dataclass(frozen=True, slots=True)
class Timing:
    prompt_at: datetime  # *Send "Are you joining?"* from here...
    prompt_until: datetime  # ...until the classroom closes (its hard cap)
    end_at: datetime  # *End as no-show* / *report tutor no-show* from here...
    end_until: datetime  # ...until the logging deadline


def timing(
    starts_at: datetime,
    prompt_minutes: int,
    end_minutes: int,
    classroom_closes_at: datetime,
    logging_deadline: datetime,
) -> Timing:
    return Timing(
        prompt_at=starts_at + timedelta(minutes=prompt_minutes),
        prompt_until=classroom_closes_at,
        end_at=starts_at + timedelta(minutes=end_minutes),
        end_until=logging_deadline,
    )


def attended(stays: Iterable[Stay]) -> frozenset[str]:
    """Everyone with at least one stay in the classroom, however short."""
    return frozenset(stay.user_id for stay in stays)


@dataclass(frozen=True, slots=True)
class Situation:
    """What the rules look at: the session, who is booked, who came, and when it is."""

    state: str
    mode: str
    tutor_id: str
    students: tuple[str, ...]  # booked and not removed
    attended: frozenset[str]
    now: datetime
    timing: Timing

    @property
    def absent(self) -> tuple[str, ...]:
        return tuple(s for s in self.students if s not in self.attended)

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(s for s in self.students if s in self.attended)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _check_open(s: Situation) -> None:
    if s.mode != "online":
        raise InvalidState("An in-person session has no classroom to wait in.", state=s.state)
    if s.state not in OPEN_STATES:
        raise InvalidState(f"A {s.state} session cannot be ended as a no-show.", state=s.state)


def _check_named(s: Situation, named: Sequence[str]) -> None:
    for student_id in named:
        if student_id not in s.students:
            raise NotAParticipant(f"{student_id} is not booked on this session.")
    came = [student_id for student_id in named if student_id in s.attended]
    if came:
        raise WasPresent(user_ids=came)


def check_prompt(s: Situation, named: Sequence[str] | None = None) -> list[str]:
    """The students to send *Are you joining?* to: ``named`` or every absent student."""
    _check_open(s)
    if s.now < s.timing.prompt_at:
        raise TooEarly(available_at=_iso(s.timing.prompt_at))
    if s.now >= s.timing.prompt_until:
        raise ClassroomClosed("The classroom has closed; message the student instead.")
    if named:
        _check_named(s, named)
        return list(dict.fromkeys(named))
    if not s.absent:
        raise WasPresent("Every student has joined.", user_ids=list(s.present))
    return list(s.absent)


def check_student_no_show(s: Situation, named: Sequence[str] | None = None) -> list[str]:
    """The students declared no-shows (``named``, default every booked student) when the tutor
    ends the session. Refused while any booked student came (remove the absent ones and
    complete instead), and unless the tutor waited in the classroom."""
    _check_open(s)
    if s.now < s.timing.end_at:
        raise TooEarly(available_at=_iso(s.timing.end_at))
    if s.now > s.timing.end_until:
        raise GracePeriodExpired(deadline=_iso(s.timing.end_until))
    if named:
        _check_named(s, named)
    if s.present:
        raise WasPresent(
            "Some students came: remove the absent ones and complete the session instead.",
            user_ids=list(s.present),
        )
    if s.tutor_id not in s.attended:
        raise NotInClassroom(
            "Wait in the classroom first: the attendance record is the evidence of a no-show."
        )
    return list(dict.fromkeys(named)) if named else list(s.students)


def check_tutor_no_show(s: Situation, reporter_id: str) -> None:
    """A booked student who waited in the classroom reports that the tutor never came."""
    if reporter_id not in s.students:
        raise Forbidden("Only a student booked on the session can report the tutor's absence.")
    _check_open(s)
    if s.now < s.timing.end_at:
        raise TooEarly(available_at=_iso(s.timing.end_at))
    if s.now > s.timing.end_until:
        raise GracePeriodExpired(deadline=_iso(s.timing.end_until))
    if s.tutor_id in s.attended:
        raise WasPresent(user_ids=[s.tutor_id])
    if reporter_id not in s.attended:
        raise NotInClassroom(
            "Wait in the classroom first: the attendance record is the evidence of a no-show."
        )


def passes(check: Callable[[], object]) -> bool:
    try:
        check()
    except ClassroomError:
        return False
    return True


def fee_split(
    rate_cents_per_hour: int, duration_minutes: int, fee_percent: float, platform_fee_percent: float
) -> Split | None:
    """A no-show fee: ``fee_percent`` of the scheduled duration at the tutor's rate (nearest
    cent, halves up), shared with the platform like any charge; None when the policy is off."""
    if fee_percent <= 0:
        return None
    full = charge_cents(rate_cents_per_hour, duration_minutes)
    amount = platform_fee_cents(full, fee_percent)  # "percent of", rounded halves up
    fee = platform_fee_cents(amount, platform_fee_percent)
    return Split(amount_cents=amount, fee_cents=fee, earning_cents=amount - fee)
