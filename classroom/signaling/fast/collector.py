"""The garbage collector's schedule: a frozen start-up heap, rarer young collections, and full
collections in quiet moments (after ``gc.freeze()`` they stop happening on their own)."""

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
    """Frozen start-up heap, rarer young collections, full collections when the process is quiet."""

    def __init__(
        self,
        activity: Activity,
        *,
        thresholds: tuple[int, int, int] = (20_000, 50, 1_000_000),
        check_every: float = 1.0,
        quiet_messages_per_second: float = 20.0,
        min_interval: float = 30.0,
        max_interval: float = 300.0,
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

    def start(self) -> None:
        if self._task is not None:
            return
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(*self._thresholds)
        self._task = asyncio.create_task(self._run(), name="gc-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
        gc.unfreeze()

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
