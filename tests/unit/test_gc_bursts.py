"""The GC scheduler holds young collections back while the event loop is saturated (a burst)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from classroom.signaling import fast

BASE = (5_000, 10, 1_000_000)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the collections that start while the test runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    saved = gc.get_threshold()
    gc.callbacks.append(callback)
    try:
        yield seen
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*saved)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_a_saturated_loop_raises_the_young_threshold_and_a_quiet_one_restores_it(
    collections: list[int],
) -> None:
    scheduler = fast.GcScheduler(fast.Activity(), thresholds=BASE, burst_threshold=80_000)
    gc.set_threshold(*BASE)
    scheduler.observe(0.3)
    assert not scheduler.in_burst and gc.get_threshold() == BASE
    scheduler.observe(0.7)
    assert not scheduler.in_burst
    scheduler.observe(0.85)
    assert scheduler.in_burst and scheduler.bursts == 1
    assert gc.get_threshold() == (80_000, 10, 1_000_000)
    scheduler.observe(1.0)  # still the same burst
    scheduler.observe(0.3)  # a lull, not quiet: still the same burst
    assert scheduler.in_burst and scheduler.bursts == 1
    assert gc.get_threshold()[0] == 80_000
    scheduler.observe(0.1)
    assert not scheduler.in_burst and gc.get_threshold() == BASE
    scheduler.observe(0.5)  # busier than quiet is not a burst yet
    assert not scheduler.in_burst
    scheduler.observe(0.9)
    assert scheduler.bursts == 2


def test_the_young_objects_of_a_burst_are_collected_when_it_ends(
    collections: list[int],
) -> None:
    scheduler = fast.GcScheduler(fast.Activity(), thresholds=BASE, burst_threshold=1_000_000)
    gc.collect()
    collections.clear()
    scheduler.observe(1.0)
    kept = [[i] for i in range(3 * BASE[0])]  # more young objects than the normal threshold
    assert collections == []  # held back: the normal threshold would have collected by now
    assert gc.get_count()[0] >= BASE[0]
    scheduler.observe(0.0)
    assert collections == [1]  # both young generations, at once, when the burst ended
    assert gc.get_count()[0] < BASE[0]
    assert len(kept) == 3 * BASE[0]


def test_a_short_burst_leaves_the_collections_to_their_thresholds(
    collections: list[int],
) -> None:
    scheduler = fast.GcScheduler(fast.Activity(), thresholds=BASE, burst_threshold=1_000_000)
    gc.collect()
    collections.clear()
    scheduler.observe(1.0)
    kept = [[i] for i in range(BASE[0] // 10)]
    scheduler.observe(0.0)
    assert collections == []
    assert len(kept) == BASE[0] // 10


def test_a_burst_that_never_ends_still_collects_at_the_cap(collections: list[int]) -> None:
    scheduler = fast.GcScheduler(fast.Activity(), thresholds=BASE, burst_threshold=20_000)
    gc.collect()
    collections.clear()
    scheduler.observe(1.0)
    kept = [[i] for i in range(30_000)]
    assert collections and collections[0] == 0  # the automatic young collection, at the cap
    assert len(kept) == 30_000


async def test_the_loop_threads_cpu_decides_a_burst(collections: list[int]) -> None:
    """Against the real clocks: a loop kept busy is a burst, an idle one ends it."""
    scheduler = fast.GcScheduler(
        fast.Activity(), thresholds=BASE, burst_check_every=0.02, burst_threshold=70_000
    )
    scheduler.start()
    try:
        assert gc.get_threshold() == BASE

        async def spin() -> None:
            while not scheduler.in_burst:
                busy_until = time.thread_time() + 0.01
                while time.thread_time() < busy_until:  # CPU on the loop's thread, 10 ms a pass
                    pass
                await asyncio.sleep(0)

        await asyncio.wait_for(spin(), timeout=5.0)
        assert gc.get_threshold()[0] == 70_000
        await _until(lambda: not scheduler.in_burst)  # the loop now waits: quiet
        assert gc.get_threshold() == BASE
    finally:
        await scheduler.stop()
    assert gc.get_freeze_count() == 0


async def test_stopping_in_a_burst_restores_the_thresholds_of_before() -> None:
    before = gc.get_threshold()
    wall = [0.0]
    scheduler = fast.GcScheduler(
        fast.Activity(),
        thresholds=BASE,
        burst_check_every=0.01,
        cpu_clock=lambda: wall[0],  # the fake loop thread uses all of the wall time
        wall_clock=lambda: wall[0],
    )
    scheduler.start()
    try:
        wall[0] = 1.0
        await _until(lambda: scheduler.in_burst)
    finally:
        await scheduler.stop()
    assert not scheduler.in_burst
    assert gc.get_threshold() == before
