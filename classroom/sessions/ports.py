"""What the sessions service needs from the live classroom. ``classroom.rooms`` implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from classroom.auth import Identity

PresenceStatus = Literal["present", "reconnecting"]


@dataclass(frozen=True, slots=True)
class PresenceEntry:
    user_id: str
    name: str
    role: str
    status: PresenceStatus
    media: str | None = None  # media connection detail, e.g. "connected" | "failed" | "stalled"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "status": self.status,
        }
        if self.media is not None:
            data["media"] = self.media
        return data


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    session_id: str
    version: int
    participants: tuple[PresenceEntry, ...]
    closed: bool = False

    def others_than(self, user_id: str) -> tuple[PresenceEntry, ...]:
        return tuple(p for p in self.participants if p.user_id != user_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "version": self.version,
            "participants": [p.to_dict() for p in self.participants],
        }


class ClassroomGate(Protocol):
    """The completion gate and the classroom's presence, as the sessions service sees them."""

    async def close_for_completion(self, session_id: str, tutor_id: str) -> None:
        """Atomically check that nobody but ``tutor_id`` is present or reconnecting and close the
        classroom to new joins. Raises ``ParticipantsRemain`` (and closes nothing) otherwise."""

    async def reopen(self, session_id: str) -> None:
        """Undo ``close_for_completion`` when the completion could not be committed."""

    async def snapshot(self, session_id: str) -> PresenceSnapshot:
        """The latest presence snapshot (empty, version 0, for a classroom never opened)."""

    async def completed(self, session_id: str) -> None:
        """Called after a completion is committed: the room is told and its media torn down."""

    async def close(self, session_id: str, reason: str) -> None:
        """Close the classroom for good (a no-show ended it): everyone out, joins refused."""

    async def remove_participant(self, session_id: str, user_id: str) -> None:
        """A removed student leaves the live classroom (reason ``removed``); their sockets are
        told ``removed`` and taken out of it."""

    def media_stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        """Per participant: media state, packets/bytes forwarded, keyframe requests (this
        process's media connections; empty when media is off or elsewhere)."""


class Messenger(Protocol):
    """Messages, as the sessions service uses them (the no-show prompt)."""

    async def send_prepared(
        self, sender: Identity, student_id: str, session_id: str, text: str, client_id: str
    ) -> dict[str, Any]:
        """Send ``text`` from the tutor ``sender`` to ``student_id``, once per ``client_id``."""
