"""The sessions service: every use case of a tutoring session, and the sweep's background loop.

``SessionService(db, settings, classroom)`` is built once in ``create_app``; ``classroom`` is the
live classroom's completion gate and presence (``ClassroomGate``). Use cases commit first and only
then call out of the database. The use cases live in mixins by theme:

- ``scheduling`` — tutor profile, booking (one-off and recurring), rescheduling
- ``queries`` — lists, history, invoices, balance
- ``lifecycle`` — accept, decline, cancel, entering the classroom, the sweep
- ``completion`` — completing (the one path for HTTP and Socket.IO), money, reviews
- ``absence`` — the no-show prompt, ending as a no-show, removing a student
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from classroom.sessions.absence import AbsenceUseCases
from classroom.sessions.lifecycle import LifecycleUseCases
from classroom.sessions.scheduling import NewSession, Recurrence, SchedulingUseCases

log = logging.getLogger("classroom.sessions")

# With several processes: whether this one runs this round's sweep (a lease; see classroom.lease)
MayRun = Callable[[], Awaitable[bool]]


class SessionService(SchedulingUseCases, LifecycleUseCases, AbsenceUseCases):
    """See the mixins for each use case; the classroom calls ``enter_classroom``,
    ``complete_session``, ``can_complete`` and ``get_session``."""

    async def sweep_forever(self, interval: float, may_run: MayRun | None = None) -> None:
        """Run ``sweep`` every ``interval`` seconds until cancelled; errors are logged. With
        ``may_run``, only the rounds it allows (one process of several holds the lease)."""
        while True:
            try:
                if may_run is None or await may_run():
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)


@asynccontextmanager
async def sweeping(
    service: SessionService, interval: float, may_run: MayRun | None = None
) -> AsyncIterator[None]:
    """Keep the sweep running in the background while the block runs; cancel it after."""
    task = asyncio.create_task(service.sweep_forever(interval, may_run), name="sessions-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sweep_ctx(
    get_service: Callable[[], SessionService], interval: float, may_run: MayRun | None = None
) -> Callable[..., AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` running the sweep every ``interval`` seconds."""

    async def ctx(app: object) -> AsyncIterator[None]:
        async with sweeping(get_service(), interval, may_run):
            yield

    return ctx


__all__ = ["NewSession", "Recurrence", "SessionService", "sweep_ctx", "sweeping"]
