"""Helpers for tests on the real Redis: a unique key prefix per test, and removing its keys.

Other test runs share this Redis, so tests never flush it: they delete their own prefix.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis


def unique_prefix(kind: str = "test") -> str:
    return f"classroom-{kind}-{uuid.uuid4().hex[:12]}:"


async def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; returns how many there were."""
    client: Redis = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()
