"""The presence port. Every method is one atomic operation on one classroom's presence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from classroom.rooms.model import Change, LeaveReason, Member
from classroom.sessions.ports import PresenceSnapshot


@dataclass(frozen=True, slots=True)
class DeadConnection:
    """A connection held by a process whose heartbeat stopped (``last_seen``: its last beat)."""

    node_id: str
    last_seen: float
    session_id: str
    user_id: str
    connection: str


class PresenceStore(Protocol):
    """Backends: ``MemoryPresence`` (one process) and ``RedisPresence`` (several processes).

    ``connection`` ids are unique across processes. ``deadline`` and ``now`` are wall-clock
    seconds (``time.time()``) so that every process agrees on them.
    """

    async def join(self, session_id: str, member: Member, connection: str) -> Change:
        """Add a connection; raises ``ClassroomClosed`` when the classroom is closed."""

    async def leave(
        self, session_id: str, user_id: str, connection: str, reason: LeaveReason = "clean"
    ) -> Change: ...

    async def drop(self, session_id: str, user_id: str, connection: str, deadline: float) -> Change:
        """An abrupt disconnect: the user is reconnecting until ``deadline``."""

    async def expire(self, session_id: str, now: float) -> Change:
        """Reconnecting users past their deadline leave with reason ``timeout``."""

    async def remove(self, session_id: str, user_id: str, reason: LeaveReason) -> Change: ...

    async def close_for_completion(self, session_id: str, tutor_id: str) -> Change:
        """Raises ``ParticipantsRemain`` unless only ``tutor_id`` (or nobody) is in; then closes."""

    async def reopen(self, session_id: str) -> Change: ...

    async def close(self, session_id: str) -> Change:
        """Everyone leaves with reason ``closed``; the classroom refuses joins from now on."""

    async def snapshot(self, session_id: str) -> PresenceSnapshot: ...

    async def connections_of(self, session_id: str, user_id: str) -> frozenset[str]: ...

    async def rooms(self) -> list[str]:
        """Session ids of classrooms with anyone in them (for sweeps)."""

    async def due_rooms(self, now: float) -> list[str]:
        """Session ids of classrooms with a reconnecting user whose deadline is ``<= now``."""

    # -- node liveness: connection ids are ``<node_id>:<sid>``; every process heartbeats ------
    async def heartbeat(self, node_id: str, now: float, ttl: float) -> bool:
        """Node ``node_id`` is alive until ``now + ttl``. False when it was already declared
        dead (fenced): the node must stop using ``node_id`` (its joins are refused)."""

    async def dead_connections(self, now: float) -> list[DeadConnection]:
        """Atomically declare nodes whose heartbeat expired dead, and list the connections they
        still hold; a survivor ``drop``s each (the drop script makes each count once)."""

    async def retire(self, node_id: str, now: float) -> None:
        """A node shutting down: whatever it still holds is left to the survivors to drop."""

    # -- media affinity: a classroom's media runs on one process, its home -------------------
    async def claim_home(self, session_id: str, node_id: str, url: str, now: float) -> str | None:
        """Make ``node_id`` (public base URL ``url``) the classroom's media home unless a live
        node already is (a home whose heartbeat expired is taken over). Returns None when
        ``node_id`` is the home, else the home's URL. Raises ``NodeFenced`` for a fenced node."""

    async def ping(self) -> None:
        """Raises ``ServiceUnavailable`` when the backend cannot be reached."""

    async def close_store(self) -> None:
        """Release the backend's resources (idempotent)."""
