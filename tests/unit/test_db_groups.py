"""Group commit and the event loop: a group's works run back to back, the loop getting a pass only
every HOLD_MAX of work (a pass per work made every caller wait for hundreds of long passes at the
start of the hour), so a long group still never holds the loop for long."""

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


async def test_quick_works_run_back_to_back() -> None:
    groups = GroupCommit(Transactions(), max_group=200)

    async def quick(tx: Any) -> int:
        return 1

    passes = await passes_during(lambda: asyncio.gather(*(groups.run(quick) for _ in range(100))))
    assert groups.transactions == 1
    assert passes < 20  # a pass per work would be over 100


async def test_a_long_group_lets_the_loop_run() -> None:
    groups = GroupCommit(Transactions(), max_group=200)
    work_s = groups_module.HOLD_MAX / 2

    async def busy(tx: Any) -> int:
        time.sleep(work_s)  # the work's own CPU time, not synchronisation
        return 1

    works = 12  # 6 x HOLD_MAX of work in one group
    passes = await passes_during(lambda: asyncio.gather(*(groups.run(busy) for _ in range(works))))
    assert groups.transactions == 1
    assert passes >= 4  # a pass after about every HOLD_MAX
