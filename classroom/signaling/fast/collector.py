"""The garbage collector's schedule: a frozen start-up heap, rarer young collections, young
collections held back while the event loop is saturated (a burst: the start of the hour's joins),
and full collections in quiet moments (after ``gc.freeze()`` they stop happening on their own).

Why hold them back: in a burst the loop is busy from the first message to the last answer, so
every millisecond of collection in it is a millisecond on the last answers. A young collection
costs about its live young objects (a burst's new connections and classrooms, which survive):
held back, they are visited once, in one collection when the burst is over, instead of in
pieces during it."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class Activity:
    """Messages read by this process's sockets (the GC scheduler's notion of a quiet moment)."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages = 0


class GcScheduler:
    """Frozen start-up heap, rarer young collections, full collections when the process is quiet.

    Every ``burst_check_every`` seconds it reads the CPU the event loop's thread used since the
    last check. At ``burst_cpu_share`` of a core or more a burst begins: the young generation's
    threshold is raised to ``burst_threshold`` (the cap: a burst that never ends still collects,
    less often). It ends at the first check under ``quiet_cpu_share`` (a lull between a storm's
    connects and its joins is not quiet enough): the thresholds come back and, if the burst
    left more young objects than the normal threshold, both young generations are collected
    there and then, so the burst's survivors go to the old generation (which only the quiet full
    collections visit) instead of being visited again by later young collections.
    """

    def __init__(
        self,
        activity: Activity,
        *,
        thresholds: tuple[int, int, int] = (20_000, 50, 1_000_000),
        check_every: float = 1.0,
        quiet_messages_per_second: float = 20.0,
        min_interval: float = 30.0,
        max_interval: float = 300.0,
        burst_check_every: float = 0.05,
        burst_cpu_share: float = 0.8,
        quiet_cpu_share: float = 0.25,
        burst_threshold: int = 400_000,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._activity = activity
        self._thresholds = thresholds
        self._check_every = check_every
        self._quiet = quiet_messages_per_second * check_every
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._saved: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.full_collections = 0
        self._burst_check_every = burst_check_every
        self._burst_cpu_share = burst_cpu_share
        self._quiet_cpu_share = quiet_cpu_share
        self._burst_threshold = burst_threshold
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._mark = (0.0, 0.0)  # (wall, cpu) at the last burst check
        self._check: asyncio.TimerHandle | None = None
        self.in_burst = False
        self.bursts = 0  # bursts seen (young collections held back in each)

    def start(self) -> None:
        if self._task is not None:
            return
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(*self._thresholds)
        self._task = asyncio.create_task(self._run(), name="gc-scheduler")
        if self._burst_check_every > 0:
            self._mark = (self._wall_clock(), self._cpu_clock())
            self._check = asyncio.get_running_loop().call_later(
                self._burst_check_every, self._check_burst
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._check is not None:
            self._check.cancel()
            self._check = None
        self.in_burst = False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
        gc.unfreeze()

    def _check_burst(self) -> None:
        wall, cpu = self._wall_clock(), self._cpu_clock()
        last_wall, last_cpu = self._mark
        self._mark = (wall, cpu)
        if wall > last_wall:
            self.observe((cpu - last_cpu) / (wall - last_wall))
        self._check = asyncio.get_running_loop().call_later(
            self._burst_check_every, self._check_burst
        )

    def observe(self, cpu_share: float) -> None:
        """The loop's thread used ``cpu_share`` of a core since the last check."""
        if not self.in_burst and cpu_share >= self._burst_cpu_share:
            self.in_burst = True
            self.bursts += 1
            gc.set_threshold(self._burst_threshold, *self._thresholds[1:])
        elif self.in_burst and cpu_share < self._quiet_cpu_share:
            self.in_burst = False
            gc.set_threshold(*self._thresholds)
            if gc.get_count()[0] >= self._thresholds[0]:
                started = time.perf_counter()
                gc.collect(1)
                log.debug(
                    "young collection after a burst in %.1f ms",
                    (time.perf_counter() - started) * 1000,
                )

    async def _run(self) -> None:
        last_full = time.monotonic()
        seen = self._activity.messages
        while True:
            await asyncio.sleep(self._check_every)
            now = time.monotonic()
            count = self._activity.messages
            quiet = count - seen <= self._quiet
            seen = count
            since = now - last_full
            if (quiet and since >= self._min_interval) or since >= self._max_interval:
                started = time.perf_counter()
                gc.collect()
                last_full = time.monotonic()
                self.full_collections += 1
                log.debug("full collection in %.1f ms", (time.perf_counter() - started) * 1000)


def gc_ctx(scheduler: GcScheduler) -> Callable[[web.Application], Any]:
    """An aiohttp ``cleanup_ctx`` running ``scheduler`` for the application's lifetime."""

    async def ctx(app: web.Application) -> Any:
        scheduler.start()
        yield
        await scheduler.stop()

    return ctx
