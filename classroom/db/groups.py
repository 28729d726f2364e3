"""Group commit: units of work that arrive at about the same time share one write transaction.

At the start of the hour hundreds of classrooms open at once; each join writes a little (the
attendance record, the session's start). One transaction per write would queue them all behind
the database's writer (SQLite has one) and pay a commit each. ``GroupCommit.run(work)`` instead
puts ``work`` in the next transaction: the works submitted while one transaction runs go together
in the next (up to ``max_group``), in the order they were submitted. Each caller still returns only
after its own work is committed, with its own result. A work that finds the writer idle (no group
for ``IDLE_AFTER``) is written at once, in the caller's pass of the event loop where nothing
suspends (inline SQLite, its writer free): out of the rush there is nothing to gather, and a
caller on a user's path (the completion's ack waits for the classroom's close) waits for no pass.

A work must only use the transaction it is given (it may run twice: when a group fails, every
work of it is retried alone, in a transaction of its own, so one failing work fails alone and the
others still commit). A work that expects to refuse something should return the refusal rather
than raise it, or it costs its group a retry. A caller that is cancelled while waiting does not
take its work back: it commits with its group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

type Work[T] = Callable[[AsyncSession], Awaitable[T]]

HOLD_MAX = 0.002  # seconds of works run in a row before the event loop gets a pass
IDLE_AFTER = 0.005  # seconds the writer stood still, after which a work is written at once


class Transactions(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


@dataclass(slots=True)
class _Pending:
    work: Work[Any]
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    result: Any = None


class GroupCommit:
    def __init__(
        self,
        db: Transactions,
        max_group: int = 200,
        name: str = "group-commit",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_group = max_group
        self._name = name
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed or not; for tests and metrics
        self._last_group = float("-inf")  # when the writer last stopped

    async def run[T](self, work: Work[T]) -> T:
        """Run ``work(tx)`` in the next group's transaction; its result once that commits."""
        pending = _Pending(work)
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            # An idle writer (no group for IDLE_AFTER) starts eagerly: with nothing in the way
            # (the database's writer free, statements that never suspend, as on inline SQLite)
            # this one work commits at once, instead of a pass of the event loop later and
            # another for the caller to learn of it. A busy one starts in the next pass, so the
            # works that arrive meanwhile (the start of the hour) go together.
            idle = self._clock() - self._last_group > IDLE_AFTER
            self._writer = asyncio.Task(
                self._write_groups(),
                loop=asyncio.get_running_loop(),
                name=self._name,
                eager_start=idle,
            )
        # The caller's own future: a cancelled caller cancels only it, its work still commits
        # with its group (no shield: a future, two callbacks and a pass of the loop each).
        result: T = await pending.done
        return result

    async def _write_groups(self) -> None:
        group: list[_Pending] = []
        try:
            while self._queue:
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                try:
                    await self._commit(group)
                except Exception as exc:
                    if len(group) == 1:
                        _fail(group[0], exc)
                        continue
                    log.warning(
                        "%s: a group of %d failed (%s: %s); one by one",
                        self._name,
                        len(group),
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                    )
                    for pending in group:
                        try:
                            await self._commit([pending])
                        except Exception as one:
                            _fail(pending, one)
                group = []
        finally:  # cancelled (shutdown): nobody waits forever
            self._last_group = self._clock()
            for pending in group + self._queue:
                _fail(pending, RuntimeError(f"{self._name} stopped"))
            self._queue.clear()

    async def _commit(self, group: list[_Pending]) -> None:
        self.transactions += 1
        async with self._db.transaction() as tx:
            ran = time.perf_counter()
            for pending in group:
                pending.result = await pending.work(tx)
                # On SQLite the statements run inline: a group of 200 would hold the event loop
                # for the whole transaction. Let it run every HOLD_MAX, not after every work: a
                # pass of the loop at the start of the hour is long, and every caller of the
                # group (and of the groups queued behind it) waits for all of its passes.
                if time.perf_counter() - ran > HOLD_MAX and pending is not group[-1]:
                    await asyncio.sleep(0)
                    ran = time.perf_counter()
        for pending in group:
            if not pending.done.done():
                pending.done.set_result(pending.result)

    async def close(self) -> None:
        """Stop the writer (what waits fails with ``RuntimeError``)."""
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        pending.done.set_exception(exc)
        # A caller that was cancelled never reads it: don't let asyncio log it as lost.
        pending.done.exception()
