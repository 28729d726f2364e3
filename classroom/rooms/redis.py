"""Presence in Redis, shared by every server process: the multi-process ``PresenceStore``.

Every mutation, the completion gate included, is one Lua script (``redis_scripts``), so "nobody
but the tutor remains" and "closed to joins" are decided in one step that no join on another
process can interleave with, and versions increase by one per change across processes. Reads are
single ``GET``s of the room document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript

from classroom.errors import ClassroomClosed, ParticipantsRemain, ServiceUnavailable
from classroom.rooms import redis_scripts as lua
from classroom.rooms.model import Change, LeaveReason, Member
from classroom.rooms.ports import DeadConnection
from classroom.sessions.ports import PresenceEntry, PresenceSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_POOL_SIZE = 20
DEFAULT_ROOM_TTL = 24 * 3600.0  # an empty or finished classroom's key is kept this long
TOMBSTONE_TTL = 24 * 3600  # a dead node's id stays fenced this long


class NodeFenced(ServiceUnavailable):
    """This process was declared dead by the others: it may not add presence any more."""

    default_message = "This server is restarting; please reconnect."


def _seq(value: Any) -> list[Any]:
    """Lua's cjson writes an empty array as ``{}``."""
    return value if isinstance(value, list) else []


def _member(raw: Sequence[str]) -> Member:
    return Member(raw[0], raw[1], raw[2])


def _snapshot(session_id: str, room: dict[str, Any]) -> PresenceSnapshot:
    entries = tuple(
        PresenceEntry(
            p["u"], p["n"], p["r"], "reconnecting" if p["st"] == "reconnecting" else "present"
        )
        for p in _seq(room.get("ps"))
    )
    return PresenceSnapshot(session_id, int(room.get("v", 0)), entries, bool(room.get("closed")))


class RedisPresence:
    """``PresenceStore`` on one Redis; every process of a deployment uses the same ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "classroom:",
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout: float = 5.0,
        room_ttl: float = DEFAULT_ROOM_TTL,
        socket_timeout: float = 5.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.prefix = prefix
        self._room_ttl = str(max(1, int(room_ttl)))
        # An explicit, bounded pool: waiting briefly for a free connection beats opening the
        # default 100 and failing with "Too many connections" under load.
        self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=pool_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            decode_responses=True,
        )
        self.redis: Redis = Redis(connection_pool=self._pool)
        self._closed = False
        self._join = self.redis.register_script(lua.PRELUDE + lua.JOIN)
        self._leave = self.redis.register_script(lua.PRELUDE + lua.LEAVE)
        self._expire = self.redis.register_script(lua.PRELUDE + lua.EXPIRE)
        self._remove = self.redis.register_script(lua.PRELUDE + lua.REMOVE)
        self._gate = self.redis.register_script(lua.PRELUDE + lua.GATE)
        self._reopen = self.redis.register_script(lua.PRELUDE + lua.REOPEN)
        self._close = self.redis.register_script(lua.PRELUDE + lua.CLOSE)
        self._heartbeat = self.redis.register_script(lua.PRELUDE + lua.HEARTBEAT)
        self._dead = self.redis.register_script(lua.PRELUDE + lua.DEAD_CONNECTIONS)
        self._retire = self.redis.register_script(lua.PRELUDE + lua.RETIRE)
        self._claim_home = self.redis.register_script(lua.PRELUDE + lua.CLAIM_HOME)

    # -- plumbing ------------------------------------------------------------------------------
    def room_key(self, session_id: str) -> str:
        return f"{self.prefix}room:{session_id}"

    async def _call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            log.warning("presence store unreachable op=%s: %s", what, exc)
            raise ServiceUnavailable("Presence is unavailable; please try again.") from exc

    async def _run(self, script: AsyncScript, key: str, *args: str) -> Any:
        async def op() -> Any:
            return await script(keys=[key], args=[self.prefix, self._room_ttl, *args])

        return await self._call("script", op)

    async def _mutate(self, script: AsyncScript, session_id: str, *args: str) -> Change:
        raw = await self._run(script, self.room_key(session_id), session_id, *args)
        data = json.loads(raw)
        error = data.get("err")
        if error == "closed":
            raise ClassroomClosed()
        if error == "participants_remain":
            raise ParticipantsRemain()
        if error == "node_fenced":
            raise NodeFenced()
        if error:
            raise RuntimeError(f"presence script refused: {error}")
        return Change(
            snapshot=_snapshot(session_id, data["room"]),
            changed=bool(data["changed"]),
            joined=tuple(_member(m) for m in _seq(data["joined"])),
            left=tuple((_member(m), reason) for m, reason in _seq(data["left"])),
            reconnecting=tuple(_member(m) for m in _seq(data["reconnecting"])),
            restored=tuple(_member(m) for m in _seq(data["restored"])),
        )

    async def _room(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._call("get", lambda: self.redis.get(self.room_key(session_id)))
        return json.loads(raw) if raw else None

    # -- PresenceStore -------------------------------------------------------------------------
    async def join(self, session_id: str, member: Member, connection: str) -> Change:
        return await self._mutate(
            self._join, session_id, member.user_id, member.name, member.role, connection
        )

    async def leave(
        self, session_id: str, user_id: str, connection: str, reason: LeaveReason = "clean"
    ) -> Change:
        return await self._mutate(self._leave, session_id, user_id, connection, reason, "")

    async def drop(self, session_id: str, user_id: str, connection: str, deadline: float) -> Change:
        return await self._mutate(
            self._leave, session_id, user_id, connection, "drop", repr(float(deadline))
        )

    async def expire(self, session_id: str, now: float) -> Change:
        return await self._mutate(self._expire, session_id, repr(float(now)))

    async def remove(self, session_id: str, user_id: str, reason: LeaveReason) -> Change:
        return await self._mutate(self._remove, session_id, user_id, reason)

    async def close_for_completion(self, session_id: str, tutor_id: str) -> Change:
        return await self._mutate(self._gate, session_id, tutor_id)

    async def reopen(self, session_id: str) -> Change:
        return await self._mutate(self._reopen, session_id)

    async def close(self, session_id: str) -> Change:
        return await self._mutate(self._close, session_id)

    async def snapshot(self, session_id: str) -> PresenceSnapshot:
        room = await self._room(session_id)
        return _snapshot(session_id, room) if room else PresenceSnapshot(session_id, 0, ())

    async def connections_of(self, session_id: str, user_id: str) -> frozenset[str]:
        room = await self._room(session_id)
        for p in _seq(room.get("ps")) if room else []:
            if p["u"] == user_id:
                return frozenset(_seq(p.get("c")))
        return frozenset()

    async def rooms(self) -> list[str]:
        members = await self._call("rooms", lambda: self.redis.smembers(f"{self.prefix}rooms"))
        return sorted(str(m) for m in members)

    async def due_rooms(self, now: float) -> list[str]:
        key = f"{self.prefix}due"
        found = await self._call("due", lambda: self.redis.zrangebyscore(key, "-inf", now))
        return [str(sid) for sid in found]

    # -- node liveness -------------------------------------------------------------------------
    async def heartbeat(self, node_id: str, now: float, ttl: float) -> bool:
        alive = await self._run(
            self._heartbeat, f"{self.prefix}nodes", node_id, repr(float(now)), repr(float(ttl))
        )
        return bool(alive)

    async def dead_connections(self, now: float) -> list[DeadConnection]:
        raw = await self._run(
            self._dead, f"{self.prefix}nodes", repr(float(now)), str(TOMBSTONE_TTL)
        )
        return [
            DeadConnection(node, float(seen), entry[0], entry[1], entry[2])
            for node, seen, entry in json.loads(raw)
        ]

    async def retire(self, node_id: str, now: float) -> None:
        await self._run(
            self._retire, f"{self.prefix}nodes", node_id, repr(float(now)), str(TOMBSTONE_TTL)
        )

    # -- media affinity ------------------------------------------------------------------------
    async def claim_home(self, session_id: str, node_id: str, url: str, now: float) -> str | None:
        key = f"{self.prefix}home:{session_id}"
        data = json.loads(await self._run(self._claim_home, key, node_id, url, repr(float(now))))
        if data.get("err") == "node_fenced":
            raise NodeFenced()
        return None if data["node"] == node_id else str(data["url"])

    async def ping(self) -> None:
        await self._call("ping", self.redis.ping)

    async def close_store(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.redis.aclose()
        await self._pool.disconnect()
