"""Group commit and the event loop: a group's works run back to back, the loop getting a pass only
every HOLD_MAX of work (a pass per work made every caller wait for hundreds of long passes at the
start of the hour), so a long group still never holds the loop for long; and a work that finds
the writer idle commits at once, without waiting for a pass (the completion's ack waits for it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from classroom.db import groups as groups_module
from classroom.db.groups import GroupCommit


class Transactions:
    """A unit of work that commits nothing: the works' yielding is what is under test."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        yield object()


async def passes_during(run: Any) -> int:
    """How many passes the event loop made while ``run()`` ran."""
    loop = asyncio.get_running_loop()
    passes = 0
    running = True

    def tick() -> None:
        nonlocal passes
        passes += 1
        if running:
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        await asyncio.wait_for(run(), 10)
    finally:
        running = False
    return passes


def still() -> float:
    """A clock that never moves: after its first group the writer is never idle again, so what
    goes together does not depend on the machine's speed."""
    return 0.0


async def test_quick_works_run_back_to_back() -> None:
    groups = GroupCommit(Transactions(), max_group=200, clock=still)

    async def quick(tx: Any) -> int:
        return 1

    passes = await passes_during(lambda: asyncio.gather(*(groups.run(quick) for _ in range(100))))
    # The first found the writer idle and committed at once, alone; the 99 that came while it
    # was (just) busy went together.
    assert groups.transactions == 2
    assert passes < 20  # a pass per work would be over 100


async def test_a_long_group_lets_the_loop_run() -> None:
    groups = GroupCommit(Transactions(), max_group=200, clock=still)
    work_s = groups_module.HOLD_MAX / 2

    async def busy(tx: Any) -> int:
        time.sleep(work_s)  # the work's own CPU time, not synchronisation
        return 1

    works = 13  # the first alone (the writer was idle), then 6 x HOLD_MAX of work in one group
    passes = await passes_during(lambda: asyncio.gather(*(groups.run(busy) for _ in range(works))))
    assert groups.transactions == 2
    assert passes >= 4  # a pass after about every HOLD_MAX


async def test_an_idle_writer_commits_a_lone_work_without_a_pass_of_the_loop() -> None:
    groups = GroupCommit(Transactions())

    async def quick(tx: Any) -> int:
        return 7

    result: list[int] = []

    async def run() -> None:
        result.append(await groups.run(quick))

    assert await passes_during(run) == 0
    assert result == [7]
    assert groups.transactions == 1


async def test_a_busy_writer_lets_the_works_arriving_meanwhile_gather() -> None:
    groups = GroupCommit(Transactions(), clock=still)

    async def quick(tx: Any) -> int:
        return 1

    await groups.run(quick)  # the writer has just stopped (and the clock stands still)
    passes = await passes_during(lambda: asyncio.gather(*(groups.run(quick) for _ in range(50))))
    assert groups.transactions == 2  # the 50 in one group
    assert passes >= 1  # its writer started in the next pass, not at the first work


async def test_the_writer_is_idle_again_after_idle_after() -> None:
    now = [100.0]
    groups = GroupCommit(Transactions(), clock=lambda: now[0])

    async def quick(tx: Any) -> int:
        return 1

    await groups.run(quick)
    now[0] += groups_module.IDLE_AFTER / 2
    assert await passes_during(lambda: groups.run(quick)) >= 1  # still busy: the next pass
    now[0] += groups_module.IDLE_AFTER * 2
    assert await passes_during(lambda: groups.run(quick)) == 0  # idle: at once
