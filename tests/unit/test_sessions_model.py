"""The pure rules of a session: states, limits, completion rules, windows, money, attendance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from classroom.errors import (
    DurationTooLong,
    GracePeriodExpired,
    InvalidDuration,
    InvalidMinutes,
    InvalidPayload,
    InvalidState,
    RecapTooShort,
)
from classroom.sessions import model
from classroom.sessions.model import State, Stay

T0 = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- states ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.REQUESTED, State.ACCEPTED),
        (State.REQUESTED, State.DECLINED),
        (State.REQUESTED, State.CANCELLED),
        (State.REQUESTED, State.MISSED),
        (State.REQUESTED, State.REQUESTED),  # rescheduled before anyone accepted
        (State.ACCEPTED, State.REQUESTED),  # rescheduled
        (State.ACCEPTED, State.IN_PROGRESS),
        (State.ACCEPTED, State.COMPLETED),  # in person, or online without the classroom
        (State.ACCEPTED, State.CANCELLED),
        (State.IN_PROGRESS, State.COMPLETED),
        (State.IN_PROGRESS, State.AWAITING_SUPPORT),
        (State.AWAITING_SUPPORT, State.COMPLETED),
        (State.MISSED, State.COMPLETED),
    ],
)
def test_allowed_transitions(current: State, target: State) -> None:
    assert model.can_transition(current, target)
    model.check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.REQUESTED, State.IN_PROGRESS),  # starting needs acceptance
        (State.REQUESTED, State.COMPLETED),
        (State.IN_PROGRESS, State.CANCELLED),
        (State.IN_PROGRESS, State.REQUESTED),
        (State.COMPLETED, State.CANCELLED),
        (State.COMPLETED, State.COMPLETED),
        (State.CANCELLED, State.ACCEPTED),
        (State.DECLINED, State.ACCEPTED),
        ("nonsense", State.ACCEPTED),
        (State.ACCEPTED, "nonsense"),
    ],
)
def test_refused_transitions(current: str, target: str) -> None:
    assert not model.can_transition(current, target)
    with pytest.raises(InvalidState):
        model.check_transition(current, target)


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(model.TRANSITIONS) == set(State)
    terminal = {s for s, targets in model.TRANSITIONS.items() if not targets}
    assert terminal == {State.COMPLETED, State.DECLINED, State.CANCELLED}


def test_support_may_complete_a_session_never_logged_but_not_a_no_acceptance_start() -> None:
    assert model.support_may_complete(State.MISSED, model.REASON_WINDOW_PASSED)
    assert model.support_may_complete(State.AWAITING_SUPPORT, model.REASON_WINDOW_PASSED)
    assert model.support_may_complete(State.IN_PROGRESS, None)
    assert not model.support_may_complete(State.MISSED, model.REASON_NOT_ACCEPTED)
    assert not model.support_may_complete(State.REQUESTED, None)
    assert not model.support_may_complete(State.CANCELLED, None)


# -- durations and logged minutes -------------------------------------------------------------
@pytest.mark.parametrize("minutes", [5, 30, 45, 60, 85, 90])
def test_durations_in_range(minutes: int) -> None:
    assert model.validate_duration(minutes) == minutes


def test_duration_over_90_minutes_is_too_long() -> None:
    with pytest.raises(DurationTooLong):
        model.validate_duration(95)
    with pytest.raises(DurationTooLong):
        model.validate_duration(91)


@pytest.mark.parametrize("minutes", [0, 4, -5, 7, 44])
def test_durations_off_the_steps(minutes: int) -> None:
    with pytest.raises(InvalidDuration):
        model.validate_duration(minutes)


@pytest.mark.parametrize("minutes", [5, 10, 45, 85, 90])
def test_logged_minutes_on_the_steps(minutes: int) -> None:
    assert model.validate_minutes(minutes) == minutes


@pytest.mark.parametrize("minutes", [4, 0, -5, 95, 91, 46, 89, 45.0, "45", True, None])
def test_logged_minutes_refused(minutes: object) -> None:
    with pytest.raises(InvalidMinutes) as info:
        model.validate_minutes(minutes)
    assert info.value.code == "invalid_minutes"


@pytest.mark.parametrize(
    ("measured", "step"),
    [(0, 0), (0.1, 5), (1, 5), (4.99, 5), (5, 5), (5.01, 10), (41, 45), (45, 45), (89, 90)],
)
def test_round_up_to_step(measured: float, step: int) -> None:
    assert model.round_up_to_step(measured) == step


# -- recap ----------------------------------------------------------------------------------------
def test_recap_of_149_characters_is_too_short_and_150_is_enough() -> None:
    with pytest.raises(RecapTooShort) as info:
        model.validate_recap("x" * 149)
    assert info.value.extra == {"length": 149, "min_length": 150}
    assert model.validate_recap("x" * 150) == "x" * 150


def test_recap_is_counted_after_trimming() -> None:
    padded = "   \n" + "x" * 149 + "\t  "
    with pytest.raises(RecapTooShort):
        model.validate_recap(padded)
    assert model.validate_recap("  " + "y" * 150 + "  ") == "y" * 150


def test_recap_counts_characters_not_bytes() -> None:
    assert len(model.validate_recap("é" * 150)) == 150


def test_recap_limits() -> None:
    assert len(model.validate_recap("z" * 5000)) == 5000
    with pytest.raises(InvalidPayload):
        model.validate_recap("z" * 5001)
    with pytest.raises(InvalidPayload):
        model.validate_recap(None)


# -- windows --------------------------------------------------------------------------------------
def test_logging_window_runs_72_hours_from_the_scheduled_end() -> None:
    end = at(60)
    deadline = model.logging_deadline(end, None, 72)
    assert deadline == end + timedelta(hours=72)
    model.check_logging_window(end + timedelta(hours=71, minutes=59), deadline, is_admin=False)
    model.check_logging_window(deadline, deadline, is_admin=False)  # inclusive
    with pytest.raises(GracePeriodExpired):
        model.check_logging_window(end + timedelta(hours=72, minutes=1), deadline, is_admin=False)
    # support is exempt
    model.check_logging_window(end + timedelta(days=30), deadline, is_admin=True)


def test_logging_window_runs_from_the_last_leave_when_later() -> None:
    end = at(60)
    assert model.logging_deadline(end, at(100), 72) == at(100) + timedelta(hours=72)
    assert model.logging_deadline(end, at(30), 72) == end + timedelta(hours=72)


def test_late_cancellation_boundary_is_24_hours() -> None:
    start = at(0)
    assert not model.is_late_cancellation(start - timedelta(hours=24), start)
    assert not model.is_late_cancellation(start - timedelta(hours=24, seconds=1), start)
    assert model.is_late_cancellation(start - timedelta(hours=23, minutes=59, seconds=59), start)
    assert model.is_late_cancellation(start + timedelta(minutes=5), start)


def test_classroom_window() -> None:
    window = model.classroom_window(T0, 60, open_before_minutes=15, hard_cap_minutes=30)
    assert window.opens_at == at(-15)
    assert window.closes_at == at(90)
    assert not window.is_open(at(-15.01))
    assert window.is_open(at(-15))
    assert window.is_open(at(89.99))
    assert not window.is_open(at(90))


def test_windows_keep_the_zone_of_their_start() -> None:
    """Windows are computed once per start and length; the same instant given in another zone
    (equal, and hashing equal) still gets a window in its own zone."""
    paris = timezone(timedelta(hours=1))
    here = model.classroom_window(T0, 60, open_before_minutes=15, hard_cap_minutes=30)
    there = model.classroom_window(
        T0.astimezone(paris), 60, open_before_minutes=15, hard_cap_minutes=30
    )
    assert here == there  # the same instants
    assert here.opens_at.utcoffset() == timedelta(0)
    assert there.opens_at.utcoffset() == there.closes_at.utcoffset() == timedelta(hours=1)
    assert model.ends_at(T0.astimezone(paris), 60).utcoffset() == timedelta(hours=1)
    assert model.ends_at(T0, 60).utcoffset() == timedelta(0)
    longer = model.classroom_window(T0, 90, open_before_minutes=15, hard_cap_minutes=30)
    assert longer.closes_at == at(120)


def test_overlap_is_half_open() -> None:
    assert model.overlaps(at(0), at(60), at(59), at(120))
    assert not model.overlaps(at(0), at(60), at(60), at(120))  # back to back
    assert model.overlaps(at(0), at(60), at(10), at(20))


# -- money ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "minutes", "cents"),
    [
        (6000, 45, 4500),
        (6000, 5, 500),
        (0, 90, 0),
        (4999, 45, 3749),  # 3749.25 -> 3749
        (3333, 45, 2500),  # 2499.75 -> 2500
        (1002, 45, 752),  # 751.5 -> 752: halves round up
        (2, 15, 1),  # 0.5 -> 1
        (1, 15, 0),  # 0.25 -> 0
        (5001, 90, 7502),  # 7501.5 -> 7502
    ],
)
def test_charge_is_rate_times_minutes_rounded_half_up(rate: int, minutes: int, cents: int) -> None:
    assert model.charge_cents(rate, minutes) == cents


def test_platform_fee_and_earning_always_add_up() -> None:
    split = model.split_charge(4999, 45, 12.5)
    assert split.amount_cents == 3749
    assert split.fee_cents == 469  # 468.625 -> 469
    assert split.earning_cents == 3749 - 469
    assert sum(split.ledger) == 0
    assert model.split_charge(6000, 45, 0).fee_cents == 0
    assert model.split_charge(6000, 45, 100).earning_cents == 0
    assert model.platform_fee_cents(5, 10) == 1  # 0.5 -> 1
    assert model.platform_fee_cents(3, 10) == 0


def test_money_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        model.charge_cents(-1, 45)
    with pytest.raises(ValueError):
        model.platform_fee_cents(100, 101)


# -- attendance -----------------------------------------------------------------------------------
def test_overlap_of_tutor_and_student() -> None:
    stays = [
        Stay("t", "tutor", at(0), at(50)),
        Stay("s", "student", at(10), at(60)),
    ]
    summary = model.summarise_attendance(stays, now=at(120))
    assert summary.seconds == {"t": 3000, "s": 3000}
    assert summary.overlap_seconds == 40 * 60
    assert summary.suggested_minutes == 40


def test_rejoins_count_once_and_open_stays_run_to_now() -> None:
    stays = [
        Stay("t", "tutor", at(0), at(20)),
        Stay("t", "tutor", at(10), None),  # second tab, still in
        Stay("s", "student", at(5), at(15)),
        Stay("s", "student", at(30), at(41)),
    ]
    summary = model.summarise_attendance(stays, now=at(45))
    assert summary.seconds["t"] == 45 * 60
    assert summary.seconds["s"] == 21 * 60
    assert summary.overlap_seconds == 21 * 60
    assert summary.suggested_minutes == 25  # 21 rounds up to 25


def test_group_overlap_counts_time_with_any_student_once() -> None:
    stays = [
        Stay("t", "tutor", at(0), at(60)),
        Stay("a", "student", at(0), at(30)),
        Stay("b", "student", at(20), at(40)),
    ]
    assert model.summarise_attendance(stays, at(60)).overlap_seconds == 40 * 60


def test_suggestion_is_clamped_to_5_and_90() -> None:
    assert model.summarise_attendance([], at(0)).suggested_minutes == 5
    assert model.suggested_minutes(0) == 5
    assert model.suggested_minutes(1) == 5
    assert model.suggested_minutes(40 * 60 + 1) == 45
    assert model.suggested_minutes(200 * 60) == 90
    stays = [Stay("t", "tutor", at(0), at(10)), Stay("s", "student", at(20), at(30))]
    assert model.summarise_attendance(stays, at(30)).overlap_seconds == 0


def test_needs_review_above_overlap_plus_ten_minutes() -> None:
    overlap = 30 * 60
    assert not model.needs_review(40, overlap)  # exactly +10
    assert model.needs_review(45, overlap)
    assert model.needs_review(40, overlap - 1)  # one second less together
    assert model.needs_review(15, 0)
    assert not model.needs_review(10, 0)
