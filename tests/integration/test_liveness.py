"""Node liveness on the real Redis: processes (here: stores on their own connection pools, each
with its own RoomService) heartbeat; when one stops, the survivors turn its participants
``reconnecting`` and then let them leave, each exactly once, recorded and announced.

Clocks are controlled; nothing waits on a sleep: sweeps are called directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import Attendance, Base, Session
from classroom.metrics import Metrics
from classroom.rooms.attendance import AttendanceLog
from classroom.rooms.liveness import NodeLiveness
from classroom.rooms.memory import MemoryPresence
from classroom.rooms.model import Change, Member
from classroom.rooms.ports import PresenceStore
from classroom.rooms.redis import NodeFenced, RedisPresence
from classroom.rooms.service import RoomService
from tests.conftest import REDIS_URL
from tests.redis_support import delete_prefix, unique_prefix

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")
STUDENT2 = Member("s2", "Sid", "student")
GRACE = 10.0
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A room listener: what this process announced."""

    changes: list[Change] = field(default_factory=list)

    async def presence_changed(self, change: Change) -> None:
        self.changes.append(change)

    async def classroom_closed(self, session_id: str, reason: str) -> None:
        return None

    def reconnecting(self) -> list[str]:
        return [m.user_id for c in self.changes for m in c.reconnecting]

    def left(self) -> list[tuple[str, str]]:
        return [(m.user_id, why) for c in self.changes for m, why in c.left]


@dataclass
class Node:
    presence: PresenceStore
    rooms: RoomService
    liveness: NodeLiveness
    heard: Recorder

    @property
    def id(self) -> str:
        return self.liveness.node_id

    def conn(self, sid: str) -> str:
        return f"{self.id}:{sid}"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'liveness.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.close()


@pytest.fixture
async def session_id(db: Database) -> str:
    async with db.transaction() as tx:
        session = Session(tutor_id="t", starts_at=datetime.now(UTC), duration_minutes=60)
        tx.add(session)
        await tx.flush()
        return session.id


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = unique_prefix("liveness")
    yield value
    await delete_prefix(REDIS_URL, value)


@pytest.fixture
async def nodes(db: Database, clock: Clock, prefix: str) -> AsyncIterator[list[Node]]:
    """Three processes sharing one Redis prefix and one database."""
    made: list[Node] = []
    for name in ("a", "b", "c"):
        presence = RedisPresence(REDIS_URL, prefix=prefix, pool_size=4)
        rooms = RoomService(presence, AttendanceLog(db), Metrics(), GRACE, clock=clock)
        heard = Recorder()
        rooms.add_listener(heard)
        liveness = NodeLiveness(presence, rooms, f"node{name}", interval=1.0, ttl=3.0, clock=clock)
        made.append(Node(presence, rooms, liveness, heard))
    try:
        yield made
    finally:
        for node in made:
            await node.rooms.close_all_timers()
            await node.presence.close_store()


async def stays(db: Database, session_id: str) -> list[tuple[str, str | None]]:
    async with db.reader() as tx:
        rows = await tx.execute(
            select(Attendance.user_id, Attendance.leave_reason)
            .where(Attendance.session_id == session_id)
            .order_by(Attendance.id)
        )
        return [(user, reason) for user, reason in rows.all()]


pytestmark = pytest.mark.redis


async def test_dead_process_participants_reconnect_then_leave_once(
    nodes: list[Node], clock: Clock, db: Database, session_id: str
) -> None:
    a, b, c = nodes
    for node in nodes:
        assert await node.liveness.beat()
    await a.rooms.join(session_id, TUTOR, a.conn("1"))
    await a.rooms.join(session_id, STUDENT, a.conn("2"))
    await b.rooms.join(session_id, STUDENT2, b.conn("3"))

    # a is killed: it beats no more. Before its heartbeat expires nothing happens.
    clock.now = T0 + 2.0
    assert await b.liveness.beat() and await c.liveness.beat()
    assert await b.liveness.sweep() == 0
    clock.now = T0 + 3.5
    assert await b.liveness.beat() and await c.liveness.beat()
    # Two survivors sweep at the same moment: each dead connection is dropped once.
    await asyncio.gather(b.liveness.sweep(), c.liveness.sweep())
    assert sorted(b.heard.reconnecting() + c.heard.reconnecting()) == ["s", "t"]
    snapshot = await c.rooms.snapshot(session_id)
    assert [(p.user_id, p.status) for p in snapshot.participants] == [
        ("t", "reconnecting"),
        ("s", "reconnecting"),
        ("s2", "present"),
    ]
    # The process comes back from a long stall: it is fenced, it may not add presence.
    assert not await a.liveness.beat()
    with pytest.raises(NodeFenced):
        await a.rooms.join(session_id, STUDENT, a.conn("4"))

    # They leave at the dead process's last heartbeat + the grace, announced once.
    for now in (T0 + 6.0, T0 + 8.5):
        clock.now = now
        assert await b.liveness.beat() and await c.liveness.beat()
    clock.now = T0 + GRACE - 0.1
    assert list(await asyncio.gather(b.liveness.sweep(), c.liveness.sweep())) == [0, 0]
    clock.now = T0 + GRACE
    assert await b.liveness.beat() and await c.liveness.beat()
    await asyncio.gather(b.liveness.sweep(), c.liveness.sweep())
    assert sorted(b.heard.left() + c.heard.left()) == [("s", "timeout"), ("t", "timeout")]
    snapshot = await b.rooms.snapshot(session_id)
    assert [(p.user_id, p.status) for p in snapshot.participants] == [("s2", "present")]
    versions = [ch.snapshot.version for n in nodes for ch in n.heard.changes]
    assert sorted(versions) == list(range(1, len(versions) + 1))  # one announcement per change
    assert await stays(db, session_id) == [("t", "timeout"), ("s", "timeout"), ("s2", None)]
    # The dead node is forgotten (tombstoned) once nothing of it is left.
    assert await b.presence.dead_connections(clock.now) == []
    assert isinstance(b.presence, RedisPresence)
    redis, prefix = b.presence.redis, b.presence.prefix
    assert not await redis.hexists(f"{prefix}reaping", a.id)
    assert await redis.zscore(f"{prefix}nodes", a.id) is None
    assert await redis.exists(f"{prefix}gone:{a.id}")


async def test_a_user_already_back_on_a_survivor_sees_nothing(
    nodes: list[Node], clock: Clock, session_id: str
) -> None:
    a, b, _ = nodes
    await a.liveness.beat()
    await b.liveness.beat()
    await a.rooms.join(session_id, STUDENT, a.conn("1"))
    await b.rooms.join(session_id, STUDENT, b.conn("9"))  # reconnected elsewhere before detection
    clock.now = T0 + 4.0
    await b.liveness.beat()
    assert await b.liveness.sweep() == 1
    assert b.heard.changes == []  # the drop of the dead tab changed nothing anyone can see
    assert await b.rooms.presence.connections_of(session_id, "s") == frozenset({b.conn("9")})


async def test_a_restarted_process_takes_a_new_id_and_resurrects_nothing(
    nodes: list[Node], clock: Clock, db: Database, session_id: str, prefix: str
) -> None:
    a, _, _ = nodes
    await a.liveness.beat()
    await a.rooms.join(session_id, STUDENT, a.conn("1"))
    # Every process stops; later one starts again on the same Redis with a new node id.
    clock.now = T0 + 60.0
    presence = RedisPresence(REDIS_URL, prefix=prefix, pool_size=2)
    rooms = RoomService(presence, AttendanceLog(db), Metrics(), GRACE, clock=clock)
    heard = Recorder()
    rooms.add_listener(heard)
    fresh = NodeLiveness(presence, rooms, "node-restarted", clock=clock)
    try:
        await fresh.start()
        await fresh.sweep()  # drop: its deadline (last beat + grace) is long past
        await fresh.sweep()  # expire
        assert heard.reconnecting() == ["s"] and heard.left() == [("s", "timeout")]
        assert (await rooms.snapshot(session_id)).participants == ()
        assert not await a.liveness.beat()  # the old id stays dead
    finally:
        await fresh.close()
        await rooms.close_all_timers()
        await presence.close_store()


async def test_a_fenced_process_continues_under_a_new_id(
    nodes: list[Node], clock: Clock, session_id: str
) -> None:
    a, b, _ = nodes
    renamed: list[str] = []

    async def rename() -> str:
        renamed.append("nodea-2")
        return "nodea-2"

    fenced = NodeLiveness(a.presence, a.rooms, a.id, ttl=3.0, clock=clock, on_fenced=rename)
    assert await fenced.beat()
    clock.now = T0 + 5.0  # a stalled longer than its ttl; b declares it dead
    await b.liveness.beat()
    await b.liveness.sweep()
    assert await fenced.beat()
    assert renamed == ["nodea-2"] and fenced.node_id == "nodea-2"
    await a.rooms.join(session_id, STUDENT, "nodea-2:1")  # joins work again under the new id


async def test_shutdown_hands_leftovers_to_the_survivors_at_once(
    nodes: list[Node], clock: Clock, session_id: str
) -> None:
    a, b, c = nodes
    for node in nodes:
        await node.liveness.beat()
    await a.rooms.join(session_id, STUDENT, a.conn("1"))
    await a.liveness.close()  # retire with a connection still held
    await a.liveness.close()
    assert await b.liveness.sweep() == 1  # no need to wait for the heartbeat to expire
    assert b.heard.reconnecting() == ["s"]
    await c.liveness.close()  # holds nothing: gone at once
    assert isinstance(c.presence, RedisPresence)
    assert await c.presence.redis.exists(f"{c.presence.prefix}gone:{c.id}")


async def test_the_loop_beats_and_stops(nodes: list[Node], prefix: str) -> None:
    presence = nodes[0].presence
    assert isinstance(presence, RedisPresence)
    live = NodeLiveness(presence, nodes[0].rooms, "looping", interval=0.05, ttl=1.0)
    await live.start()
    try:
        first = await presence.redis.zscore(f"{prefix}nodes", "looping")
        assert first is not None
        async with asyncio.timeout(5):
            while await presence.redis.zscore(f"{prefix}nodes", "looping") == first:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # polling Redis, bounded by the timeout
    finally:
        await live.close()
    assert await presence.redis.zscore(f"{prefix}nodes", "looping") is None


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_the_expiry_sweep_is_the_safety_net_for_lost_timers(
    backend: str, db: Database, clock: Clock, prefix: str, session_id: str
) -> None:
    presence: PresenceStore = (
        MemoryPresence() if backend == "memory" else RedisPresence(REDIS_URL, prefix=prefix)
    )
    rooms = RoomService(presence, AttendanceLog(db), Metrics(), GRACE, clock=clock)
    heard = Recorder()
    rooms.add_listener(heard)
    live = NodeLiveness(presence, rooms, "solo", clock=clock)
    try:
        await rooms.join(session_id, STUDENT, "solo:1")
        await rooms.drop(session_id, "s", "solo:1")
        await rooms.close_all_timers()  # the grace timer is lost
        clock.now = T0 + GRACE
        assert await live.sweep() == 1
        assert heard.left() == [("s", "timeout")]
        assert await live.sweep() == 0
    finally:
        await live.close()
        await presence.close_store()
