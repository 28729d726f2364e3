"""In-process presence, the embedded default. Operations never await inside: each is atomic."""

from __future__ import annotations

from classroom.rooms.model import Change, LeaveReason, Member, RoomState
from classroom.rooms.ports import DeadConnection
from classroom.sessions.ports import PresenceSnapshot


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomState] = {}

    def _room(self, session_id: str) -> RoomState:
        room = self._rooms.get(session_id)
        if room is None:
            room = self._rooms[session_id] = RoomState(session_id)
        return room

    async def join(self, session_id: str, member: Member, connection: str) -> Change:
        return self._room(session_id).join(member, connection)

    async def leave(
        self, session_id: str, user_id: str, connection: str, reason: LeaveReason = "clean"
    ) -> Change:
        return self._room(session_id).leave(user_id, connection, reason)

    async def drop(self, session_id: str, user_id: str, connection: str, deadline: float) -> Change:
        return self._room(session_id).drop(user_id, connection, deadline)

    async def expire(self, session_id: str, now: float) -> Change:
        return self._room(session_id).expire(now)

    async def remove(self, session_id: str, user_id: str, reason: LeaveReason) -> Change:
        return self._room(session_id).remove(user_id, reason)

    async def close_for_completion(self, session_id: str, tutor_id: str) -> Change:
        return self._room(session_id).close_for_completion(tutor_id)

    async def reopen(self, session_id: str) -> Change:
        return self._room(session_id).reopen()

    async def close(self, session_id: str) -> Change:
        return self._room(session_id).close()

    async def snapshot(self, session_id: str) -> PresenceSnapshot:
        room = self._rooms.get(session_id)
        return room.snapshot() if room else PresenceSnapshot(session_id, 0, ())

    async def connections_of(self, session_id: str, user_id: str) -> frozenset[str]:
        room = self._rooms.get(session_id)
        return room.connections_of(user_id) if room else frozenset()

    async def rooms(self) -> list[str]:
        return [sid for sid, room in self._rooms.items() if room.participants]

    async def due_rooms(self, now: float) -> list[str]:
        return [
            sid
            for sid, room in self._rooms.items()
            if any(
                p.status == "reconnecting" and p.deadline is not None and p.deadline <= now
                for p in room.participants.values()
            )
        ]

    # One process: its node never dies while the presence it holds exists.
    async def heartbeat(self, node_id: str, now: float, ttl: float) -> bool:
        return True

    async def dead_connections(self, now: float) -> list[DeadConnection]:
        return []

    async def retire(self, node_id: str, now: float) -> None:
        return None

    async def claim_home(self, session_id: str, node_id: str, url: str, now: float) -> str | None:
        return None  # one process is every classroom's home

    async def ping(self) -> None:
        return None

    async def close_store(self) -> None:
        self._rooms.clear()
