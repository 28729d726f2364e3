"""The rules of a tutoring session, as pure functions and values (standard library only).

States and their transitions, the scheduling limits, the completion rules (logged minutes, recap,
the logging window), late cancellation, money, attendance evidence and the classroom's window.
Calendar rules (availability, the calendar day, recurrence) live in ``calendar.py``.

Every datetime here is timezone-aware; comparisons are between instants, so the zone they carry
does not matter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from classroom.errors import (
    DurationTooLong,
    GracePeriodExpired,
    InvalidDuration,
    InvalidMinutes,
    InvalidPayload,
    InvalidState,
    RecapTooShort,
)


class State(StrEnum):
    REQUESTED = "requested"  # waiting for every student to accept
    ACCEPTED = "accepted"  # every student accepted
    IN_PROGRESS = "in_progress"  # the classroom was entered
    COMPLETED = "completed"  # time logged, billed, paid out
    DECLINED = "declined"  # the (last) student declined
    CANCELLED = "cancelled"  # by the tutor, a student, or support
    MISSED = "missed"  # started while not accepted, or never logged
    AWAITING_SUPPORT = "awaiting_support"  # never logged, but tutor and student met


TRANSITIONS: dict[State, frozenset[State]] = {
    State.REQUESTED: frozenset(
        {State.REQUESTED, State.ACCEPTED, State.DECLINED, State.CANCELLED, State.MISSED}
    ),
    State.ACCEPTED: frozenset(
        {
            State.REQUESTED,  # rescheduled: everyone accepts again
            State.IN_PROGRESS,
            State.COMPLETED,
            State.CANCELLED,
            State.MISSED,
            State.AWAITING_SUPPORT,
        }
    ),
    State.IN_PROGRESS: frozenset({State.COMPLETED, State.MISSED, State.AWAITING_SUPPORT}),
    State.AWAITING_SUPPORT: frozenset({State.COMPLETED}),  # support logs it
    State.MISSED: frozenset({State.COMPLETED}),  # support logs it (if it was never logged)
    State.COMPLETED: frozenset(),
    State.DECLINED: frozenset(),
    State.CANCELLED: frozenset(),
}

# Sessions that hold their time slot and count towards the daily pair limit.
ACTIVE_STATES = frozenset({State.REQUESTED, State.ACCEPTED, State.IN_PROGRESS, State.COMPLETED})
# States the tutor may complete from; support (admin) may also complete the two after the window.
COMPLETABLE_STATES = frozenset({State.ACCEPTED, State.IN_PROGRESS})
SUPPORT_COMPLETABLE_STATES = frozenset(
    {State.ACCEPTED, State.IN_PROGRESS, State.AWAITING_SUPPORT, State.MISSED}
)
# Before these the sweep has work to do: nobody logged the session yet.
UNLOGGED_STATES = frozenset({State.REQUESTED, State.ACCEPTED, State.IN_PROGRESS})
# The classroom refuses entry in these.
CLOSED_STATES = frozenset(
    {State.COMPLETED, State.CANCELLED, State.DECLINED, State.MISSED, State.AWAITING_SUPPORT}
)

# state_reason values
REASON_NOT_ACCEPTED = "not_accepted"  # the tutor started it before everyone accepted
REASON_WINDOW_PASSED = "logging_window_passed"  # the logging window passed without completion


def can_transition(current: str, target: str) -> bool:
    try:
        return State(target) in TRANSITIONS[State(current)]
    except ValueError:
        return False


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidState(f"A {current} session cannot become {target}.", state=current)


def support_may_complete(state: str, state_reason: str | None) -> bool:
    """Support can log a session the tutor can no longer log, but never a no-show that was
    started without acceptance (that one cannot be billed)."""
    if state == State.MISSED:
        return state_reason == REASON_WINDOW_PASSED
    return state in SUPPORT_COMPLETABLE_STATES


# -- limits -------------------------------------------------------------------------------------
STEP_MINUTES = 5
MIN_MINUTES = 5
MAX_MINUTES = 90  # a session lasts at most 1.5 hours; logged time too
RECAP_MIN_CHARS = 150
TEXT_MAX_CHARS = 5000  # recap, notes, review text, cancel reason
TOPIC_MAX_CHARS = 500
LATE_CANCEL = timedelta(hours=24)


def validate_duration(minutes: int) -> int:
    """A scheduled duration: 5 to 90 minutes in 5-minute steps."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidDuration()
    if minutes > MAX_MINUTES:
        raise DurationTooLong(max_minutes=MAX_MINUTES)
    if minutes < MIN_MINUTES or minutes % STEP_MINUTES:
        raise InvalidDuration()
    return minutes


def validate_minutes(minutes: object) -> int:
    """Logged time: one of 5, 10, ..., 90. Use ``round_up_to_step`` to turn a measured time into
    a step (a time between two steps rounds up)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidMinutes()
    if minutes < MIN_MINUTES or minutes > MAX_MINUTES or minutes % STEP_MINUTES:
        raise InvalidMinutes()
    return minutes


def round_up_to_step(minutes: float) -> int:
    """The next 5-minute step at or above ``minutes`` (0 stays 0): 41 -> 45, 45 -> 45."""
    if minutes <= 0:
        return 0
    return math.ceil(minutes / STEP_MINUTES) * STEP_MINUTES


def clamp_minutes(minutes: int) -> int:
    return max(MIN_MINUTES, min(MAX_MINUTES, minutes))


def validate_recap(recap: object) -> str:
    """The recap, trimmed: at least 150 characters (Unicode code points), at most 5000."""
    if not isinstance(recap, str):
        raise InvalidPayload("recap: must be a string.")
    text = recap.strip()
    if len(text) < RECAP_MIN_CHARS:
        raise RecapTooShort(length=len(text), min_length=RECAP_MIN_CHARS)
    if len(text) > TEXT_MAX_CHARS:
        raise InvalidPayload(f"recap: at most {TEXT_MAX_CHARS} characters.")
    return text


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Two half-open intervals overlap; back-to-back sessions do not."""
    return a_start < b_end and b_start < a_end


# -- time windows -------------------------------------------------------------------------------
def ends_at(starts_at: datetime, duration_minutes: int) -> datetime:
    return _ends_at(starts_at, starts_at.tzinfo, duration_minutes)


# The windows of sessions: the same few start times and lengths over and over (every lesson of
# the hour, each join of it several times), so computed once each. The zone is part of the key:
# equal instants in two zones compare equal, and must not come back in the other's zone.
@functools.lru_cache(maxsize=4096)
def _ends_at(starts_at: datetime, zone: tzinfo | None, duration_minutes: int) -> datetime:
    return starts_at + timedelta(minutes=duration_minutes)


def logging_deadline(
    scheduled_end: datetime, last_leave: datetime | None, window_hours: int
) -> datetime:
    """The end of the logging window: ``window_hours`` after the scheduled end, or after the
    classroom's last leave when that is later."""
    anchor = scheduled_end if last_leave is None else max(scheduled_end, last_leave)
    return anchor + timedelta(hours=window_hours)


def within_logging_window(now: datetime, deadline: datetime) -> bool:
    """Inclusive: logging exactly at the deadline is still on time."""
    return now <= deadline


def check_logging_window(now: datetime, deadline: datetime, is_admin: bool) -> None:
    if not is_admin and not within_logging_window(now, deadline):
        raise GracePeriodExpired(deadline=deadline.isoformat())


def is_late_cancellation(now: datetime, starts_at: datetime) -> bool:
    """Late when less than 24 hours remain before the start (exactly 24 hours is on time)."""
    return starts_at - now < LATE_CANCEL


@dataclass(frozen=True, slots=True)
class ClassroomWindow:
    opens_at: datetime
    closes_at: datetime  # the hard cap

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at


def classroom_window(
    starts_at: datetime, duration_minutes: int, open_before_minutes: int, hard_cap_minutes: int
) -> ClassroomWindow:
    """The classroom opens ``open_before_minutes`` before the start and closes for good
    ``hard_cap_minutes`` after the scheduled end."""
    return _classroom_window(
        starts_at, starts_at.tzinfo, duration_minutes, open_before_minutes, hard_cap_minutes
    )


@functools.lru_cache(maxsize=4096)
def _classroom_window(
    starts_at: datetime,
    zone: tzinfo | None,
    duration_minutes: int,
    open_before_minutes: int,
    hard_cap_minutes: int,
) -> ClassroomWindow:
    return ClassroomWindow(
        opens_at=starts_at - timedelta(minutes=open_before_minutes),
        closes_at=ends_at(starts_at, duration_minutes) + timedelta(minutes=hard_cap_minutes),
    )


# -- money --------------------------------------------------------------------------------------
def charge_cents(rate_cents_per_hour: int, minutes: int) -> int:
    """``rate × minutes / 60`` in integer cents, rounded to the nearest cent, halves up.

    All integer arithmetic: floor((2·rate·minutes + 60) / 120)."""
    if rate_cents_per_hour < 0 or minutes < 0:
        raise ValueError("rate and minutes must not be negative")
    return (2 * rate_cents_per_hour * minutes + 60) // 120


def platform_fee_cents(amount_cents: int, fee_percent: float) -> int:
    """The platform's share of a charge: ``amount × percent / 100``, nearest cent, halves up.

    The percentage is read through its decimal text so 12.5 means exactly 12.5."""
    if amount_cents < 0 or not 0 <= fee_percent <= 100:
        raise ValueError("amount must not be negative and the percentage within 0..100")
    fee = Decimal(amount_cents) * Decimal(str(fee_percent)) / Decimal(100)
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Split:
    amount_cents: int  # what the student is charged
    fee_cents: int  # what the platform keeps
    earning_cents: int  # what the tutor is credited; amount = fee + earning

    @property
    def ledger(self) -> tuple[int, int, int]:
        """(student charge, tutor earning, platform fee): the entries sum to zero."""
        return (-self.amount_cents, self.earning_cents, self.fee_cents)


def split_charge(rate_cents_per_hour: int, minutes: int, fee_percent: float) -> Split:
    amount = charge_cents(rate_cents_per_hour, minutes)
    fee = platform_fee_cents(amount, fee_percent)
    return Split(amount_cents=amount, fee_cents=fee, earning_cents=amount - fee)


# -- attendance evidence ------------------------------------------------------------------------
REVIEW_MARGIN_MINUTES = 10


@dataclass(frozen=True, slots=True)
class Stay:
    """One stay of one user in the classroom; ``left_at`` is None while they are still in."""

    user_id: str
    role: str
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attendance:
    seconds: dict[str, int]  # per user: time in the classroom (overlapping stays counted once)
    roles: dict[str, str]
    overlap_seconds: int  # time the tutor and at least one student were in together
    suggested_minutes: int  # overlap rounded up to a 5-minute step, clamped to 5..90


Interval = tuple[datetime, datetime]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Sequence[Interval]) -> float:
    return sum((end - start).total_seconds() for start, end in intervals)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def suggested_minutes(overlap_seconds: float) -> int:
    """The log-time suggestion: the overlap rounded up to 5 minutes, clamped to 5..90."""
    return clamp_minutes(round_up_to_step(overlap_seconds / 60))


def summarise_attendance(stays: Iterable[Stay], now: datetime) -> Attendance:
    """Each user's time in the classroom and the tutor–student overlap. An open stay counts up
    to ``now``."""
    per_user: dict[str, list[Interval]] = {}
    roles: dict[str, str] = {}
    for stay in stays:
        end = stay.left_at if stay.left_at is not None else max(now, stay.joined_at)
        per_user.setdefault(stay.user_id, []).append((stay.joined_at, end))
        roles.setdefault(stay.user_id, stay.role)
    merged = {user: _merge(intervals) for user, intervals in per_user.items()}
    tutor = _merge(i for user, ivs in merged.items() if roles[user] == "tutor" for i in ivs)
    students = _merge(i for user, ivs in merged.items() if roles[user] == "student" for i in ivs)
    overlap = int(_length(_intersect(tutor, students)))
    return Attendance(
        seconds={user: int(_length(ivs)) for user, ivs in merged.items()},
        roles=roles,
        overlap_seconds=overlap,
        suggested_minutes=suggested_minutes(overlap),
    )


def needs_review(logged_minutes: int, overlap_seconds: float) -> bool:
    """Logged time more than 10 minutes above the measured overlap is flagged for review."""
    return logged_minutes * 60 > overlap_seconds + REVIEW_MARGIN_MINUTES * 60
