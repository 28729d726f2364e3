"""Presence of one classroom as a pure state machine (no I/O, no asyncio).

Presence is by user, not by connection: a user with two tabs is one participant and leaves when
the last of their connections goes. A connection that drops without a clean close leaves its user
``reconnecting`` until a deadline; coming back in time restores ``present`` with no leave seen.
Every change bumps ``version`` by one. Backends (memory, Redis) apply these rules atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from classroom.errors import ClassroomClosed, ParticipantsRemain
from classroom.sessions.ports import PresenceEntry, PresenceSnapshot, PresenceStatus

LeaveReason = Literal["clean", "timeout", "closed", "removed"]


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    name: str
    role: str


@dataclass(slots=True)
class _Participant:
    member: Member
    connections: set[str] = field(default_factory=set)
    status: PresenceStatus = "present"
    deadline: float | None = None  # when a reconnecting participant leaves


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of one presence operation."""

    snapshot: PresenceSnapshot
    changed: bool = False
    joined: tuple[Member, ...] = ()  # users whose first connection arrived
    left: tuple[tuple[Member, LeaveReason], ...] = ()  # users who left, with why
    reconnecting: tuple[Member, ...] = ()
    restored: tuple[Member, ...] = ()  # came back inside the grace period


@dataclass(slots=True)
class RoomState:
    session_id: str
    version: int = 0
    closed: bool = False
    participants: dict[str, _Participant] = field(default_factory=dict)

    # -- reads ---------------------------------------------------------------------------------
    def snapshot(self) -> PresenceSnapshot:
        entries = tuple(
            PresenceEntry(p.member.user_id, p.member.name, p.member.role, p.status)
            for p in self.participants.values()
        )
        return PresenceSnapshot(self.session_id, self.version, entries, self.closed)

    def _change(self, **kwargs: object) -> Change:
        return Change(snapshot=self.snapshot(), **kwargs)  # type: ignore[arg-type]

    def _bump(self, **kwargs: object) -> Change:
        self.version += 1
        return self._change(changed=True, **kwargs)

    # -- mutations -----------------------------------------------------------------------------
    def join(self, member: Member, connection: str) -> Change:
        if self.closed:
            raise ClassroomClosed()
        current = self.participants.get(member.user_id)
        if current is None:
            self.participants[member.user_id] = _Participant(member, {connection})
            return self._bump(joined=(member,))
        current.connections.add(connection)
        current.member = member
        if current.status == "reconnecting":
            current.status = "present"
            current.deadline = None
            return self._bump(restored=(member,))
        return self._change()

    def leave(self, user_id: str, connection: str, reason: LeaveReason = "clean") -> Change:
        """A connection left cleanly: its user leaves if it was their last one."""
        current = self.participants.get(user_id)
        if current is None or connection not in current.connections:
            return self._change()
        current.connections.discard(connection)
        if current.connections:
            return self._change()
        del self.participants[user_id]
        return self._bump(left=((current.member, reason),))

    def drop(self, user_id: str, connection: str, deadline: float) -> Change:
        """A connection dropped abruptly: its user is reconnecting if it was their last one."""
        current = self.participants.get(user_id)
        if current is None or connection not in current.connections:
            return self._change()
        current.connections.discard(connection)
        if current.connections or current.status == "reconnecting":
            return self._change()
        current.status = "reconnecting"
        current.deadline = deadline
        return self._bump(reconnecting=(current.member,))

    def expire(self, now: float) -> Change:
        """Reconnecting participants whose deadline has passed leave (reason ``timeout``)."""
        gone = [
            p
            for p in self.participants.values()
            if p.status == "reconnecting" and p.deadline is not None and p.deadline <= now
        ]
        if not gone:
            return self._change()
        for p in gone:
            del self.participants[p.member.user_id]
        return self._bump(left=tuple((p.member, "timeout") for p in gone))

    def remove(self, user_id: str, reason: LeaveReason = "removed") -> Change:
        """A user leaves whatever their connections (removal by the tutor, process death)."""
        current = self.participants.pop(user_id, None)
        if current is None:
            return self._change()
        return self._bump(left=((current.member, reason),))

    def close_for_completion(self, tutor_id: str) -> Change:
        """The completion gate: refuse while anyone but the tutor remains, else close to joins."""
        others = [
            p.member.user_id for p in self.participants.values() if p.member.user_id != tutor_id
        ]
        if others:
            raise ParticipantsRemain()
        self.closed = True
        return self._change()

    def reopen(self) -> Change:
        self.closed = False
        return self._change()

    def close(self) -> Change:
        """Close the classroom: everyone leaves (reason ``closed``) and nobody may join."""
        self.closed = True
        if not self.participants:
            return self._change()
        gone = list(self.participants.values())
        self.participants.clear()
        return self._bump(left=tuple((p.member, "closed") for p in gone))

    def connections_of(self, user_id: str) -> frozenset[str]:
        current = self.participants.get(user_id)
        return frozenset(current.connections) if current else frozenset()
