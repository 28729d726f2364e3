"""The presence state machine: by user, reconnect grace, the completion gate, versions."""

import pytest

from classroom.errors import ClassroomClosed, ParticipantsRemain
from classroom.rooms.model import Member, RoomState

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")
STUDENT2 = Member("s2", "Sid", "student")


def statuses(room: RoomState) -> dict[str, str]:
    return {p.user_id: p.status for p in room.snapshot().participants}


def test_join_and_clean_leave_bump_the_version_once_each() -> None:
    room = RoomState("x")
    change = room.join(TUTOR, "c1")
    assert change.changed and change.joined == (TUTOR,)
    assert change.snapshot.version == 1
    change = room.leave("t", "c1")
    assert change.left == ((TUTOR, "clean"),)
    assert change.snapshot.version == 2
    assert statuses(room) == {}


def test_two_tabs_are_one_participant() -> None:
    room = RoomState("x")
    room.join(STUDENT, "tab1")
    change = room.join(STUDENT, "tab2")
    assert not change.changed and change.snapshot.version == 1
    assert not room.leave("s", "tab1").changed
    assert statuses(room) == {"s": "present"}
    change = room.leave("s", "tab2")
    assert change.left == ((STUDENT, "clean"),)


def test_abrupt_drop_reconnects_then_times_out() -> None:
    room = RoomState("x")
    room.join(STUDENT, "c1")
    change = room.drop("s", "c1", deadline=110.0)
    assert change.reconnecting == (STUDENT,)
    assert statuses(room) == {"s": "reconnecting"}
    assert not room.expire(now=109.9).changed
    change = room.expire(now=110.0)
    assert change.left == ((STUDENT, "timeout"),)
    assert change.snapshot.version == 3


def test_coming_back_inside_the_grace_shows_no_leave() -> None:
    room = RoomState("x")
    room.join(STUDENT, "c1")
    room.drop("s", "c1", deadline=110.0)
    change = room.join(STUDENT, "c2")
    assert change.restored == (STUDENT,) and not change.left
    assert statuses(room) == {"s": "present"}
    assert not room.expire(now=200.0).changed


def test_drop_of_one_tab_while_another_is_open_changes_nothing() -> None:
    room = RoomState("x")
    room.join(STUDENT, "c1")
    room.join(STUDENT, "c2")
    assert not room.drop("s", "c1", deadline=1.0).changed
    assert statuses(room) == {"s": "present"}


def test_unknown_connections_are_ignored() -> None:
    room = RoomState("x")
    room.join(STUDENT, "c1")
    assert not room.leave("s", "zzz").changed
    assert not room.drop("nobody", "c1", deadline=1).changed
    assert not room.leave("nobody", "c1").changed


def test_gate_refuses_while_a_student_is_present_or_reconnecting() -> None:
    room = RoomState("x")
    room.join(TUTOR, "t1")
    room.join(STUDENT, "s1")
    with pytest.raises(ParticipantsRemain):
        room.close_for_completion("t")
    room.drop("s", "s1", deadline=5.0)
    with pytest.raises(ParticipantsRemain):
        room.close_for_completion("t")
    assert not room.closed
    room.expire(now=5.0)
    room.close_for_completion("t")
    assert room.closed
    with pytest.raises(ClassroomClosed):
        room.join(STUDENT, "s2")


def test_gate_passes_on_an_empty_room_and_reopen_lets_joins_in() -> None:
    room = RoomState("x")
    room.close_for_completion("t")
    with pytest.raises(ClassroomClosed):
        room.join(STUDENT, "s1")
    room.reopen()
    assert room.join(STUDENT, "s1").changed


def test_close_removes_everyone_with_reason_closed() -> None:
    room = RoomState("x")
    room.join(TUTOR, "t1")
    room.join(STUDENT2, "s1")
    change = room.close()
    assert {m.user_id for m, reason in change.left if reason == "closed"} == {"t", "s2"}
    assert room.closed and statuses(room) == {}


def test_remove_takes_every_connection() -> None:
    room = RoomState("x")
    room.join(STUDENT, "a")
    room.join(STUDENT, "b")
    change = room.remove("s", "removed")
    assert change.left == ((STUDENT, "removed"),)
    assert room.connections_of("s") == frozenset()


def test_versions_strictly_increase_over_a_long_story() -> None:
    room = RoomState("x")
    seen = [0]
    steps = [
        lambda: room.join(TUTOR, "t1"),
        lambda: room.join(STUDENT, "s1"),
        lambda: room.drop("s", "s1", 10),
        lambda: room.join(STUDENT, "s2"),
        lambda: room.leave("s", "s2"),
        lambda: room.join(STUDENT, "s3"),
        lambda: room.remove("s", "removed"),
        lambda: room.leave("t", "t1"),
    ]
    for step in steps:
        change = step()
        assert change.changed
        assert change.snapshot.version == seen[-1] + 1
        seen.append(change.snapshot.version)
