"""No-show rules: the times, the evidence of attendance, who may declare what, and the fee."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from classroom.errors import ClassroomError
from classroom.sessions import no_show
from classroom.sessions.model import Stay

START = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)
TIMING = no_show.timing(
    START,
    prompt_minutes=5,
    end_minutes=10,
    classroom_closes_at=START + timedelta(minutes=90),
    logging_deadline=START + timedelta(hours=73),
)


def situation(
    minutes: float, came: tuple[str, ...] = ("tutor",), students: tuple[str, ...] = ("sara",)
) -> no_show.Situation:
    stays = [Stay(u, "x", START, START + timedelta(minutes=1)) for u in came]
    return no_show.Situation(
        state="in_progress",
        mode="online",
        tutor_id="tutor",
        students=students,
        attended=no_show.attended(stays),
        now=START + timedelta(minutes=minutes),
        timing=TIMING,
    )


def code(check: object) -> str:
    assert callable(check)
    with pytest.raises(ClassroomError) as caught:
        check()
    return caught.value.code


def test_the_prompt_opens_at_five_minutes_for_absent_students() -> None:
    assert code(lambda: no_show.check_prompt(situation(4.99))) == "too_early"
    assert no_show.check_prompt(situation(5)) == ["sara"]
    assert code(lambda: no_show.check_prompt(situation(6, came=("tutor", "sara")))) == (
        "was_present"
    )
    assert code(lambda: no_show.check_prompt(situation(90))) == "classroom_closed"


def test_the_prompt_to_named_students_only_if_they_are_booked_and_absent() -> None:
    s = situation(6, came=("tutor", "sid"), students=("sara", "sid"))
    assert no_show.check_prompt(s) == ["sara"]
    assert no_show.check_prompt(s, ["sara", "sara"]) == ["sara"]
    assert code(lambda: no_show.check_prompt(s, ["sid"])) == "was_present"
    assert code(lambda: no_show.check_prompt(s, ["zoe"])) == "not_a_participant"


def test_the_end_opens_at_ten_minutes_with_the_tutor_waiting_and_nobody_come() -> None:
    assert code(lambda: no_show.check_student_no_show(situation(9.99))) == "too_early"
    assert no_show.check_student_no_show(situation(10)) == ["sara"]
    came = situation(10, came=("tutor", "sara"))
    with pytest.raises(ClassroomError) as caught:
        no_show.check_student_no_show(came)
    assert caught.value.code == "was_present"
    assert caught.value.extra["user_ids"] == ["sara"]
    assert code(lambda: no_show.check_student_no_show(situation(10, came=()))) == (
        "not_in_classroom"
    )
    assert code(lambda: no_show.check_student_no_show(situation(73 * 60 + 1))) == (
        "grace_period_expired"
    )


def test_in_a_group_any_student_who_came_blocks_the_no_show() -> None:
    group = situation(12, came=("tutor", "sid"), students=("sara", "sid"))
    assert code(lambda: no_show.check_student_no_show(group)) == "was_present"
    assert code(lambda: no_show.check_student_no_show(group, ["sara"])) == "was_present"
    nobody = situation(12, students=("sara", "sid"))
    assert no_show.check_student_no_show(nobody) == ["sara", "sid"]
    assert no_show.check_student_no_show(nobody, ["sid"]) == ["sid"]


def test_only_open_online_sessions() -> None:
    s = situation(12)
    assert code(lambda: no_show.check_student_no_show(replace(s, state="completed"))) == (
        "invalid_state"
    )
    assert code(lambda: no_show.check_student_no_show(replace(s, mode="in_person"))) == (
        "invalid_state"
    )
    assert no_show.check_student_no_show(replace(s, state="accepted")) == ["sara"]


def test_a_student_who_waited_reports_the_tutor_never_came() -> None:
    waited = situation(10, came=("sara",))
    no_show.check_tutor_no_show(waited, "sara")
    assert code(lambda: no_show.check_tutor_no_show(situation(9, came=("sara",)), "sara")) == (
        "too_early"
    )
    assert code(lambda: no_show.check_tutor_no_show(situation(10, came=()), "sara")) == (
        "not_in_classroom"
    )
    assert code(lambda: no_show.check_tutor_no_show(situation(10), "sara")) == "was_present"
    assert code(lambda: no_show.check_tutor_no_show(waited, "zoe")) == "forbidden"


def test_passes_turns_a_check_into_a_flag() -> None:
    assert no_show.passes(lambda: no_show.check_prompt(situation(5)))
    assert not no_show.passes(lambda: no_show.check_prompt(situation(1)))


def test_no_fee_by_default_and_a_percentage_of_the_scheduled_time_when_set() -> None:
    assert no_show.fee_split(6000, 60, 0, 10) is None
    split = no_show.fee_split(6000, 60, 50, 10)
    assert split is not None
    assert (split.amount_cents, split.fee_cents, split.earning_cents) == (3000, 300, 2700)
    # 4999 ¢/h × 45 min = 3749 ¢; 25 % = 937.25 → 937
    odd = no_show.fee_split(4999, 45, 25, 0)
    assert odd is not None and odd.amount_cents == 937
    assert sum(odd.ledger) == 0
