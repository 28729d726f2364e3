"""One contract for every presence backend: the in-process one and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from classroom.errors import ClassroomClosed, ParticipantsRemain
from classroom.rooms.memory import MemoryPresence
from classroom.rooms.model import Member
from classroom.rooms.ports import PresenceStore
from classroom.rooms.redis import RedisPresence
from classroom.sessions.ports import PresenceSnapshot
from tests.conftest import REDIS_URL
from tests.redis_support import delete_prefix, unique_prefix

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PresenceStore]:
    if request.param == "memory":
        backend: PresenceStore = MemoryPresence()
        yield backend
        await backend.close_store()
        return
    prefix = unique_prefix("contract")
    backend = RedisPresence(REDIS_URL, prefix=prefix, pool_size=8)
    try:
        yield backend
    finally:
        await backend.close_store()
        await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def room() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def test_empty_room_snapshot(store: PresenceStore, room: str) -> None:
    snapshot = await store.snapshot(room)
    assert (snapshot.version, snapshot.participants, snapshot.closed) == (0, (), False)


async def test_join_leave_versions_and_names(store: PresenceStore, room: str) -> None:
    change = await store.join(room, TUTOR, "n:1")
    assert change.changed and change.joined == (TUTOR,)
    change = await store.join(room, STUDENT, "n:2")
    assert change.snapshot.version == 2
    assert [(p.user_id, p.name, p.role, p.status) for p in change.snapshot.participants] == [
        ("t", "Tina", "tutor", "present"),
        ("s", "Sara", "student", "present"),
    ]
    change = await store.leave(room, "s", "n:2")
    assert change.left == ((STUDENT, "clean"),)
    assert (await store.snapshot(room)).version == 3
    assert await store.rooms() == [room] or room in await store.rooms()


async def test_two_connections_one_user(store: PresenceStore, room: str) -> None:
    await store.join(room, STUDENT, "n:1")
    assert not (await store.join(room, STUDENT, "n:2")).changed
    assert await store.connections_of(room, "s") == frozenset({"n:1", "n:2"})
    assert not (await store.leave(room, "s", "n:1")).changed
    assert (await store.leave(room, "s", "n:2")).left


async def test_drop_expire_and_restore(store: PresenceStore, room: str) -> None:
    await store.join(room, STUDENT, "n:1")
    change = await store.drop(room, "s", "n:1", deadline=1000.0)
    assert change.reconnecting == (STUDENT,)
    assert [p.status for p in change.snapshot.participants] == ["reconnecting"]
    assert not (await store.expire(room, now=999.0)).changed
    restored = await store.join(room, STUDENT, "n:2")
    assert restored.restored == (STUDENT,)
    await store.drop(room, "s", "n:2", deadline=1000.0)
    change = await store.expire(room, now=1000.0)
    assert change.left == ((STUDENT, "timeout"),)


async def test_gate(store: PresenceStore, room: str) -> None:
    await store.join(room, TUTOR, "n:t")
    await store.join(room, STUDENT, "n:s")
    with pytest.raises(ParticipantsRemain):
        await store.close_for_completion(room, "t")
    await store.leave(room, "s", "n:s")
    await store.close_for_completion(room, "t")
    assert (await store.snapshot(room)).closed
    with pytest.raises(ClassroomClosed):
        await store.join(room, STUDENT, "n:s2")
    await store.reopen(room)
    assert (await store.join(room, STUDENT, "n:s3")).changed


async def test_close_and_remove(store: PresenceStore, room: str) -> None:
    await store.join(room, TUTOR, "n:t")
    await store.join(room, STUDENT, "n:s")
    change = await store.remove(room, "s", "removed")
    assert change.left == ((STUDENT, "removed"),)
    change = await store.close(room)
    assert change.left == ((TUTOR, "closed"),)
    with pytest.raises(ClassroomClosed):
        await store.join(room, TUTOR, "n:t2")


async def test_join_racing_the_gate_never_both_succeed(store: PresenceStore, room: str) -> None:
    for round_ in range(50):
        name = f"{room}-{round_}"
        await store.join(name, TUTOR, "n:t")

        async def join(name: str = name, round_: int = round_) -> bool:
            try:
                await store.join(name, STUDENT, f"n:s{round_}")
                return True
            except ClassroomClosed:
                return False

        async def complete(name: str = name) -> bool:
            try:
                await store.close_for_completion(name, "t")
                return True
            except ParticipantsRemain:
                return False

        joined, completed = await asyncio.gather(join(), complete())
        assert joined != completed, f"round {round_}: joined={joined} completed={completed}"


# -- behaviour pinned for every backend (RoomState's rules, reproduced exactly) ----------------
STUDENT2 = Member("s2", "Sid", "student")


def statuses(snapshot: PresenceSnapshot) -> list[tuple[str, str]]:
    return [(p.user_id, p.status) for p in snapshot.participants]


async def test_no_ops_change_nothing(store: PresenceStore, room: str) -> None:
    for change in (
        await store.leave(room, "s", "n:1"),
        await store.drop(room, "s", "n:1", deadline=10.0),
        await store.remove(room, "s", "removed"),
        await store.expire(room, now=10.0),
    ):
        assert not change.changed and change.snapshot.version == 0
    await store.join(room, STUDENT, "n:1")
    assert not (await store.leave(room, "s", "n:other")).changed
    assert not (await store.leave(room, "nobody", "n:1")).changed
    assert (await store.snapshot(room)).version == 1


async def test_every_change_bumps_the_version_by_one_and_join_order_holds(
    store: PresenceStore, room: str
) -> None:
    versions = []
    for operation in (
        store.join(room, TUTOR, "n:t"),
        store.join(room, STUDENT, "n:s"),
        store.join(room, STUDENT2, "n:s2"),
        store.drop(room, "t", "n:t", deadline=50.0),
        store.join(room, TUTOR, "n:t2"),  # restored: keeps its place
        store.leave(room, "s", "n:s"),
        store.join(room, STUDENT, "n:s3"),  # back at the end
    ):
        change = await operation
        assert change.changed
        versions.append(change.snapshot.version)
    assert versions == list(range(1, 8))
    assert statuses(await store.snapshot(room)) == [
        ("t", "present"),
        ("s2", "present"),
        ("s", "present"),
    ]


async def test_second_tab_updates_the_name_without_a_change(
    store: PresenceStore, room: str
) -> None:
    await store.join(room, STUDENT, "n:1")
    renamed = Member("s", "Sara B.", "student")
    change = await store.join(room, STUDENT, "n:1")  # the same connection again
    assert not change.changed
    change = await store.join(room, renamed, "n:2")
    assert not change.changed and change.snapshot.participants[0].name == "Sara B."
    change = await store.leave(room, "s", "n:1")
    assert not change.changed
    change = await store.leave(room, "s", "n:2")
    assert change.left == ((renamed, "clean"),)


async def test_drop_of_one_tab_keeps_the_user_present(store: PresenceStore, room: str) -> None:
    await store.join(room, STUDENT, "n:1")
    await store.join(room, STUDENT, "n:2")
    assert not (await store.drop(room, "s", "n:1", deadline=5.0)).changed
    assert statuses(await store.snapshot(room)) == [("s", "present")]
    assert await store.due_rooms(now=100.0) == []
    change = await store.drop(room, "s", "n:2", deadline=5.0)
    assert change.reconnecting == (STUDENT,)
    assert not (await store.drop(room, "s", "n:2", deadline=9.0)).changed
    assert await store.connections_of(room, "s") == frozenset()


async def test_due_rooms_follow_the_earliest_deadline(store: PresenceStore, room: str) -> None:
    await store.join(room, STUDENT, "n:1")
    await store.join(room, STUDENT2, "n:2")
    await store.drop(room, "s", "n:1", deadline=20.0)
    await store.drop(room, "s2", "n:2", deadline=10.0)
    assert room not in await store.due_rooms(now=9.5)
    assert room in await store.due_rooms(now=10.0)
    change = await store.expire(room, now=15.0)
    assert change.left == ((STUDENT2, "timeout"),)
    assert room not in await store.due_rooms(now=15.0)
    assert room in await store.due_rooms(now=20.0)
    await store.join(room, STUDENT, "n:3")  # restored: nothing due any more
    assert room not in await store.due_rooms(now=1000.0)


async def test_expire_lets_everyone_overdue_leave_in_join_order(
    store: PresenceStore, room: str
) -> None:
    await store.join(room, TUTOR, "n:t")
    await store.join(room, STUDENT, "n:s")
    await store.join(room, STUDENT2, "n:s2")
    await store.drop(room, "s2", "n:s2", deadline=3.0)
    await store.drop(room, "s", "n:s", deadline=4.0)
    change = await store.expire(room, now=4.0)
    assert change.left == ((STUDENT, "timeout"), (STUDENT2, "timeout"))
    assert change.snapshot.version == 6
    assert statuses(change.snapshot) == [("t", "present")]


async def test_gate_counts_reconnecting_users_and_a_refusal_changes_nothing(
    store: PresenceStore, room: str
) -> None:
    await store.join(room, TUTOR, "n:t")
    await store.join(room, STUDENT, "n:s")
    await store.drop(room, "s", "n:s", deadline=30.0)
    before = await store.snapshot(room)
    with pytest.raises(ParticipantsRemain):
        await store.close_for_completion(room, "t")
    assert await store.snapshot(room) == before and not before.closed
    await store.expire(room, now=30.0)
    await store.drop(room, "t", "n:t", deadline=60.0)  # the tutor reconnecting does not block
    change = await store.close_for_completion(room, "t")
    assert change.snapshot.closed and not change.changed


async def test_gate_on_an_unopened_classroom_closes_it(store: PresenceStore, room: str) -> None:
    change = await store.close_for_completion(room, "t")
    assert change.snapshot.closed and change.snapshot.version == 0
    with pytest.raises(ClassroomClosed):
        await store.join(room, STUDENT, "n:s")
    assert (await store.snapshot(room)).closed


async def test_close_empties_and_refuses_everyone(store: PresenceStore, room: str) -> None:
    await store.join(room, TUTOR, "n:t")
    await store.join(room, STUDENT, "n:s")
    await store.drop(room, "s", "n:s", deadline=30.0)
    change = await store.close(room)
    assert change.left == ((TUTOR, "closed"), (STUDENT, "closed"))
    assert change.snapshot.closed and change.snapshot.participants == ()
    assert room not in await store.rooms()
    assert room not in await store.due_rooms(now=100.0)
    again = await store.close(room)
    assert not again.changed and again.snapshot.version == change.snapshot.version


async def test_rooms_lists_only_occupied_classrooms(store: PresenceStore, room: str) -> None:
    other = f"{room}-other"
    await store.join(room, STUDENT, "n:1")
    await store.join(other, STUDENT, "n:2")
    await store.leave(other, "s", "n:2")
    rooms = await store.rooms()
    assert room in rooms and other not in rooms


async def test_liveness_calls_are_safe_on_every_backend(store: PresenceStore, room: str) -> None:
    assert await store.heartbeat("node-a", now=100.0, ttl=3.0)
    await store.join(room, STUDENT, "node-a:1")
    assert await store.dead_connections(now=101.0) == []
    await store.ping()
    assert statuses(await store.snapshot(room)) == [("s", "present")]
