"""What only the Redis backend has to prove: atomicity across connection pools (as across
processes), versions across processes, key hygiene, a bounded pool, and failing clearly."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from classroom.errors import ClassroomClosed, ParticipantsRemain, ServiceUnavailable
from classroom.rooms.model import Member
from classroom.rooms.redis import NodeFenced, RedisPresence
from tests.conftest import REDIS_URL
from tests.redis_support import delete_prefix, unique_prefix

pytestmark = pytest.mark.redis

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = unique_prefix("redis")
    yield value
    await delete_prefix(REDIS_URL, value)


@pytest.fixture
async def pair(prefix: str) -> AsyncIterator[tuple[RedisPresence, RedisPresence]]:
    """Two stores on two connection pools, like two server processes."""
    a = RedisPresence(REDIS_URL, prefix=prefix, pool_size=4)
    b = RedisPresence(REDIS_URL, prefix=prefix, pool_size=4)
    try:
        yield a, b
    finally:
        await a.close_store()
        await b.close_store()


async def test_join_racing_the_gate_across_processes_never_both_succeed(
    pair: tuple[RedisPresence, RedisPresence],
) -> None:
    a, b = pair
    outcomes = {"joined": 0, "completed": 0}
    rng = random.Random(7)
    for round_ in range(200):
        room = f"race-{round_}"
        await a.join(room, TUTOR, "a:t")
        joiner, completer = (a, b) if round_ % 2 else (b, a)

        async def join(room: str = room, joiner: RedisPresence = joiner) -> bool:
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            try:
                await joiner.join(room, STUDENT, f"x:s{room}")
                return True
            except ClassroomClosed:
                return False

        async def complete(room: str = room, completer: RedisPresence = completer) -> bool:
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            try:
                await completer.close_for_completion(room, "t")
                return True
            except ParticipantsRemain:
                return False

        if rng.random() < 0.5:
            joined, completed = await asyncio.gather(join(), complete())
        else:
            completed, joined = await asyncio.gather(complete(), join())
        assert joined != completed, f"round {round_}: joined={joined} completed={completed}"
        snapshot = await b.snapshot(room)
        assert snapshot.closed == completed
        assert [p.user_id for p in snapshot.participants] == (["t", "s"] if joined else ["t"])
        outcomes["joined" if joined else "completed"] += 1
    assert min(outcomes.values()) > 20, outcomes  # both sides of the race were exercised


async def test_versions_increase_by_one_per_change_across_processes(
    pair: tuple[RedisPresence, RedisPresence],
) -> None:
    a, b = pair
    members = [Member(f"u{i}", f"User {i}", "student") for i in range(40)]

    async def visit(i: int, member: Member) -> list[int]:
        store = a if i % 2 else b
        joined = await store.join("busy", member, f"n{i % 2}:{i}")
        left = await store.leave("busy", member.user_id, f"n{i % 2}:{i}")
        return [joined.snapshot.version, left.snapshot.version]

    results = await asyncio.gather(*(visit(i, m) for i, m in enumerate(members)))
    versions = sorted(v for pair_ in results for v in pair_)
    assert versions == list(range(1, 81))
    for joined_version, left_version in results:
        assert joined_version < left_version
    assert (await a.snapshot("busy")).version == 80


async def test_empty_and_closed_classrooms_expire_occupied_ones_do_not(prefix: str) -> None:
    store = RedisPresence(REDIS_URL, prefix=prefix, pool_size=2, room_ttl=120)
    try:
        key = store.room_key("r1")
        await store.join("r1", STUDENT, "n:1")
        assert await store.redis.ttl(key) == -1  # occupied: kept
        await store.drop("r1", "s", "n:1", deadline=5.0)
        assert await store.redis.ttl(key) == -1  # reconnecting still counts
        await store.expire("r1", now=5.0)
        assert 0 < await store.redis.ttl(key) <= 120
        await store.close_for_completion("r2", "t")
        assert 0 < await store.redis.ttl(store.room_key("r2")) <= 120
        await store.leave("r3", "s", "n:1")  # a no-op creates nothing
        assert not await store.redis.exists(store.room_key("r3"))
        # Nothing is left behind in the indexes either.
        assert await store.redis.scard(f"{prefix}conns:n") == 0
        assert await store.redis.scard(f"{prefix}rooms") == 0
        assert await store.redis.zcard(f"{prefix}due") == 0
    finally:
        await store.close_store()


async def test_fenced_node_may_not_add_presence(pair: tuple[RedisPresence, RedisPresence]) -> None:
    a, b = pair
    assert await a.heartbeat("dead", now=100.0, ttl=3.0)
    await a.join("r", STUDENT, "dead:1")
    assert [d.connection for d in await b.dead_connections(now=103.0)] == ["dead:1"]
    assert not await a.heartbeat("dead", now=103.5, ttl=3.0)
    with pytest.raises(NodeFenced) as refused:
        await a.join("r", TUTOR, "dead:2")
    assert refused.value.code == "unavailable"
    await b.drop("r", "s", "dead:1", deadline=113.0)
    assert await b.dead_connections(now=104.0) == []  # reaped: the node is gone for good
    assert not await a.heartbeat("dead", now=105.0, ttl=3.0)
    assert await b.redis.exists(f"{a.prefix}gone:dead")


async def test_pool_is_bounded_and_close_is_idempotent(prefix: str) -> None:
    store = RedisPresence(REDIS_URL, prefix=prefix, pool_size=3)
    assert store.redis.connection_pool.max_connections == 3
    # More concurrent operations than connections: they queue for the pool, none fails.
    changes = await asyncio.gather(
        *(store.join("r", Member(f"u{i}", "U", "student"), f"n:{i}") for i in range(30))
    )
    assert sorted(c.snapshot.version for c in changes) == list(range(1, 31))
    await store.close_store()
    await store.close_store()


async def test_unreachable_redis_is_a_clear_unavailable_error() -> None:
    store = RedisPresence("redis://127.0.0.1:1/0", prefix="x:", pool_size=1, socket_timeout=1)
    try:
        with pytest.raises(ServiceUnavailable):
            await store.ping()
        with pytest.raises(ServiceUnavailable):
            await store.join("r", STUDENT, "n:1")
    finally:
        await store.close_store()
