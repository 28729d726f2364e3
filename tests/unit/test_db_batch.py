"""Batched reads: keys asked for together are read together, each caller gets its own value,
and nobody is answered by a read that started before they asked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from classroom.db.batch import BatchLoader


class Source:
    """A store whose reads can be held open, recording the keys of each read."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.reads: list[list[str]] = []
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()
        self.fail: Exception | None = None

    async def load(self, keys: Sequence[str]) -> dict[str, int]:
        self.reads.append(list(keys))
        snapshot = {k: self.values[k] for k in keys if k in self.values}
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return snapshot


async def test_keys_asked_together_are_read_together() -> None:
    source = Source({f"k{i}": i for i in range(20)})
    loader = BatchLoader(source.load)
    keys = [f"k{i % 10}" for i in range(20)] + ["missing"]
    got = await asyncio.wait_for(asyncio.gather(*(loader.get(k) for k in keys)), 5)
    assert got == [i % 10 for i in range(20)] + [None]
    assert len(source.reads) == 1
    assert sorted(source.reads[0]) == sorted({*keys})  # each key once


async def test_a_key_asked_during_a_read_waits_for_the_next_one() -> None:
    source = Source({"a": 1})
    source.hold = asyncio.Event()
    loader = BatchLoader(source.load)
    first = asyncio.ensure_future(loader.get("a"))
    await asyncio.wait_for(source.reading.wait(), 5)  # the read of "a" = 1 is under way
    source.values["a"] = 2  # a change commits meanwhile
    second = asyncio.ensure_future(loader.get("a"))
    source.hold.set()
    assert await asyncio.wait_for(first, 5) == 1
    assert await asyncio.wait_for(second, 5) == 2  # not the stale answer of the running read
    assert source.reads == [["a"], ["a"]]


async def test_batches_are_bounded() -> None:
    source = Source({f"k{i}": i for i in range(25)})
    loader = BatchLoader(source.load, max_batch=10)
    got = await asyncio.wait_for(asyncio.gather(*(loader.get(f"k{i}") for i in range(25))), 5)
    assert got == list(range(25))
    assert [len(r) for r in source.reads] == [10, 10, 5]


async def test_a_failed_read_fails_its_callers_and_the_next_read_works() -> None:
    source = Source({"a": 1, "b": 2})
    source.fail = RuntimeError("database gone")
    loader = BatchLoader(source.load)
    results = await asyncio.wait_for(
        asyncio.gather(loader.get("a"), loader.get("b"), return_exceptions=True), 5
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    source.fail = None
    assert await asyncio.wait_for(loader.get("b"), 5) == 2


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    source = Source({"a": 1})
    source.hold = asyncio.Event()
    loader = BatchLoader(source.load)
    one = asyncio.ensure_future(loader.get("a"))
    await asyncio.wait_for(source.reading.wait(), 5)
    two = asyncio.ensure_future(loader.get("a"))
    three = asyncio.ensure_future(loader.get("a"))
    await asyncio.sleep(0)
    two.cancel()
    source.hold.set()
    assert await asyncio.wait_for(one, 5) == 1
    assert await asyncio.wait_for(three, 5) == 1
    with pytest.raises(asyncio.CancelledError):
        await two
