"""Several server processes on one Redis: the shared backends, and this process among the others.

With ``CLASSROOM_REDIS_URL`` set, every process uses ``RedisPresence`` (presence and the completion
gate), ``RedisFanout`` as python-socketio's client manager (an emit to a room reaches its sockets on
every process; the cluster's messages ride on the same channel) and a lease so that one process
runs the sessions sweep. Without it everything stays in this process. Either way this process runs
``NodeLiveness`` — with Redis it heartbeats and sweeps up after dead processes; in one process it
is the safety net that lets overdue *reconnecting* participants leave if a grace timer was lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import socketio

from classroom.config import Settings
from classroom.lease import RedisLease
from classroom.rooms.liveness import NodeLiveness
from classroom.rooms.memory import MemoryPresence
from classroom.rooms.ports import PresenceStore
from classroom.rooms.redis import RedisPresence
from classroom.signaling.fanout import RedisFanout

log = logging.getLogger(__name__)

READY_TIMEOUT = 2.0  # seconds /readyz waits for Redis


@dataclass(frozen=True, slots=True)
class Backends:
    presence: PresenceStore
    fanout: RedisFanout | None = None
    sweep_lease: RedisLease | None = None


def shared_backends(settings: Settings, fanout_class: type[RedisFanout] = RedisFanout) -> Backends:
    """The backends every process of a deployment shares (one Redis, one key prefix).
    ``fanout_class``: ``RedisFanout`` or a subclass (the signaling fast path wraps it)."""
    if settings.redis_url is None:
        return Backends(MemoryPresence())
    prefix = settings.redis_prefix
    presence = RedisPresence(settings.redis_url, prefix=prefix, pool_size=settings.redis_pool_size)
    fanout = fanout_class(
        settings.redis_url, channel=f"{prefix}socketio", pool_size=settings.redis_pool_size
    )
    lease = RedisLease(
        presence.redis, f"{prefix}lease:sessions-sweep", ttl=3 * settings.sweep_interval_seconds
    )
    if settings.public_url is None:
        log.warning(
            "CLASSROOM_PUBLIC_URL is not set: wrong_node refusals will name %s", settings.base_url
        )
    return Backends(presence, fanout, lease)


class Node:
    """This process's part in the deployment: started with the app, stopped after its sockets
    were disconnected and before the presence store closes."""

    def __init__(self, backends: Backends, liveness: NodeLiveness, sio: socketio.AsyncServer):
        self._backends = backends
        self.liveness = liveness
        self._sio = sio
        self._stopped = False

    async def start(self) -> None:
        fanout = self._backends.fanout
        if fanout is not None and not self._sio.manager_initialized:
            # Listen from the start, not from the first client: cluster messages (a classroom
            # closed elsewhere) must reach this process whether or not it has clients yet.
            self._sio.manager_initialized = True
            fanout.initialize()
        await self.liveness.start()

    async def stop(self) -> None:
        """Stop heartbeating (handing what this node still holds to the others), give up the
        sweep lease, stop the fan-out (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        await self.liveness.close()
        if self._backends.sweep_lease is not None:
            await self._backends.sweep_lease.release()
        if self._backends.fanout is not None:
            await self._backends.fanout.close()

    async def checks(self) -> dict[str, str]:
        """Readiness of what several processes share (nothing to check in one process)."""
        if self._backends.fanout is None:
            return {}
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self._backends.presence.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("readiness: redis unreachable node=%s: %s", self.liveness.node_id, exc)
            checks["redis"] = "unreachable"
        checks["fanout"] = "ok" if self._backends.fanout.listening else "not_listening"
        return checks
