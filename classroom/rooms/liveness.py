"""Node liveness: every process heartbeats its node id and sweeps up after processes that died.

Connection ids are ``<node_id>:<sid>``. Each process beats ``node_id`` into the presence store
every ``interval`` seconds, valid for ``ttl``. Every process also sweeps, every ``interval``:

1. ``dead_connections``: one atomic script declares nodes whose heartbeat expired dead (from then
   on their heartbeats and joins are refused: a paused process cannot come back and resurrect
   presence) and lists the connections they still hold. Each is ``drop``ped through
   ``RoomService`` as if it vanished at the dead node's last heartbeat: ``reconnecting`` until
   last beat + grace, announced and recorded by the surviving process. The drop script removes
   the connection it drops, so however many processes sweep, each connection counts once.
2. ``due_rooms``: classrooms with a reconnecting user past the deadline are ``expire``d. This is
   the safety net for grace timers lost with a process (and the path in a single process if a
   timer was lost); the expire script lets one caller win.

A restarted process has a new node id, so it never takes over a dead one's presence. A process
that finds its own node fenced (it stalled longer than ``ttl``) calls ``on_fenced``, which must
drop its sockets and return a fresh node id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from classroom.rooms.ports import PresenceStore
from classroom.rooms.service import RoomService

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
DEFAULT_TTL = 3.0

OnFenced = Callable[[], Awaitable[str]]


class NodeLiveness:
    def __init__(
        self,
        presence: PresenceStore,
        rooms: RoomService,
        node_id: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        on_fenced: OnFenced | None = None,
    ) -> None:
        if ttl <= interval:
            raise ValueError("the heartbeat ttl must be longer than its interval")
        self.node_id = node_id
        self._presence = presence
        self._rooms = rooms
        self._interval = interval
        self._ttl = ttl
        self._clock = clock
        self._on_fenced = on_fenced
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Beat once (so the node is known before it serves anyone), then keep beating."""
        await self.beat()
        self._task = asyncio.create_task(self._run(), name=f"liveness:{self.node_id}")
        log.info("node started node=%s ttl=%.1fs", self.node_id, self._ttl)

    async def beat(self) -> bool:
        """One heartbeat; when the node was fenced, take a new id through ``on_fenced``."""
        if await self._presence.heartbeat(self.node_id, self._clock(), self._ttl):
            return True
        log.error("node declared dead by the other processes node=%s", self.node_id)
        if self._on_fenced is None:
            return False
        self.node_id = await self._on_fenced()
        log.warning("node continues under a new id node=%s", self.node_id)
        return await self._presence.heartbeat(self.node_id, self._clock(), self._ttl)

    async def sweep(self) -> int:
        """Drop connections of dead nodes, expire overdue reconnecting users; returns how many
        operations it ran (the scripts make each take effect once, whoever else sweeps)."""
        now = self._clock()
        applied = 0
        for dead in await self._presence.dead_connections(now):
            log.info(
                "dropping connection of dead node node=%s session=%s user=%s connection=%s",
                dead.node_id,
                dead.session_id,
                dead.user_id,
                dead.connection,
            )
            try:
                await self._rooms.drop(
                    dead.session_id, dead.user_id, dead.connection, dropped_at=dead.last_seen
                )
                applied += 1
            except Exception:
                log.exception(
                    "drop of dead connection failed session=%s connection=%s",
                    dead.session_id,
                    dead.connection,
                )
        for session_id in await self._presence.due_rooms(now):
            try:
                await self._rooms.expire(session_id)
                applied += 1
            except Exception:
                log.exception("expiry sweep failed session=%s", session_id)
        return applied

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.beat()
            except Exception as exc:
                log.warning("heartbeat failed node=%s: %s", self.node_id, exc)
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("liveness sweep failed node=%s: %s", self.node_id, exc)

    async def close(self, retire: bool = True) -> None:
        """Stop beating (idempotent). ``retire``: hand what this node still holds to the others
        at once instead of after ``ttl``."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if retire:
            try:
                await self._presence.retire(self.node_id, self._clock())
            except Exception as exc:
                log.warning("node not retired node=%s: %s", self.node_id, exc)
        log.info("node stopped node=%s", self.node_id)
