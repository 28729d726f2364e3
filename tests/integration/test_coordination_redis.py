"""Coordination on the real Redis: the media home of a classroom, and the sweep lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from classroom.lease import RedisLease
from classroom.rooms.redis import NodeFenced, RedisPresence
from tests.conftest import REDIS_URL
from tests.redis_support import delete_prefix, unique_prefix

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.0
TTL = 3.0


@pytest.fixture
async def presence() -> AsyncIterator[RedisPresence]:
    store = RedisPresence(REDIS_URL, prefix=unique_prefix("home"), pool_size=4)
    yield store
    await store.close_store()
    await delete_prefix(REDIS_URL, store.prefix)


async def test_first_claim_makes_the_home_and_others_are_sent_there(
    presence: RedisPresence,
) -> None:
    for node in ("a", "b"):
        assert await presence.heartbeat(node, T0, TTL)
    assert await presence.claim_home("s1", "a", "http://a.test", T0) is None
    assert await presence.claim_home("s1", "b", "http://b.test", T0) == "http://a.test"
    assert await presence.claim_home("s1", "a", "http://a.test", T0 + 1) is None
    # Another classroom can live elsewhere.
    assert await presence.claim_home("s2", "b", "http://b.test", T0) is None
    assert await presence.claim_home("s2", "a", "http://a.test", T0) == "http://b.test"


async def test_a_dead_home_is_taken_over_once(presence: RedisPresence) -> None:
    for node in ("a", "b", "c"):
        assert await presence.heartbeat(node, T0, TTL)
    assert await presence.claim_home("s1", "a", "http://a.test", T0) is None
    # a stops beating; b and c go on.
    for node in ("b", "c"):
        assert await presence.heartbeat(node, T0 + 2, TTL)
    assert await presence.claim_home("s1", "b", "http://b.test", T0 + 2) == "http://a.test"
    # Past a's heartbeat expiry, even before any sweep declared it dead: the first claim wins.
    assert await presence.claim_home("s1", "c", "http://c.test", T0 + 3.5) is None
    assert await presence.claim_home("s1", "b", "http://b.test", T0 + 3.5) == "http://c.test"
    # Once swept, a is fenced: it can neither come back as home nor claim anything.
    await presence.dead_connections(T0 + 3.5)
    assert not await presence.heartbeat("a", T0 + 4, TTL)
    with pytest.raises(NodeFenced):
        await presence.claim_home("s1", "a", "http://a.test", T0 + 4)
    with pytest.raises(NodeFenced):
        await presence.claim_home("s3", "a", "http://a.test", T0 + 4)
    assert await presence.claim_home("s1", "b", "http://b.test", T0 + 4) == "http://c.test"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_one_process_holds_the_lease_until_it_releases_it(redis: Redis) -> None:
    key = unique_prefix("lease") + "sweep"
    first, second = RedisLease(redis, key, ttl=30), RedisLease(redis, key, ttl=30)
    try:
        assert await first.hold()
        assert not await second.hold()
        assert await first.hold()  # renewal
        await first.release()
        await first.release()  # idempotent
        assert await second.hold()
        assert not await first.hold()
        # A holder that lost its lease can neither renew nor delete the new holder's.
        await first.release()
        assert await redis.get(key) == second.token.encode()
    finally:
        await redis.delete(key)


async def test_a_lapsed_lease_goes_to_another_process(redis: Redis) -> None:
    key = unique_prefix("lease") + "sweep"
    first, second = RedisLease(redis, key, ttl=30), RedisLease(redis, key, ttl=30)
    try:
        assert await first.hold()
        await redis.pexpire(key, 1)  # the holder stalled past its ttl
        async with asyncio.timeout(5):
            while await redis.exists(key):
                await redis.ping()
        assert await second.hold()
        assert not await first.hold()
    finally:
        await redis.delete(key)
