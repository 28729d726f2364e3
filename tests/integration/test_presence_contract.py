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

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PresenceStore]:
    backend: PresenceStore = MemoryPresence()
    yield backend
    await backend.close_store()


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

        async def join() -> bool:
            try:
                await store.join(name, STUDENT, f"n:s{round_}")
                return True
            except ClassroomClosed:
                return False

        async def complete() -> bool:
            try:
                await store.close_for_completion(name, "t")
                return True
            except ParticipantsRemain:
                return False

        joined, completed = await asyncio.gather(join(), complete())
        assert joined != completed, f"round {round_}: joined={joined} completed={completed}"
