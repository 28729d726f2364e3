"""Socket.IO handler for removing a participant, mixed into the ``/classroom`` namespace.

The tutor's ``remove_participant`` goes through the sessions service (the same use case as
``POST /api/sessions/{id}/participants/{student_id}/remove``); the room service then tells every
process (the cluster's ``PARTICIPANT_REMOVED``), and each tells the removed user's sockets
``removed`` and takes them out of the classroom. See docs/protocol.md, "Removing a participant".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from classroom.auth import Identity
from classroom.errors import NotInClassroom
from classroom.signaling.schemas import ok, parse

log = logging.getLogger(__name__)

Ack = dict[str, Any]


class RemoveParticipantPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: StrictStr = Field(min_length=1, max_length=64)
    reason: StrictStr | None = Field(default=None, max_length=5000)


class ParticipantRemoval(Protocol):
    async def remove_participant(
        self, identity: Identity, session_id: str, student_id: str, reason: str | None = None
    ) -> dict[str, Any]: ...


class ParticipantSignaling:
    """``remove_participant``; the ``removed`` event."""

    identities: dict[str, Identity]
    _joined: dict[str, str]
    _watching: dict[str, set[str]]

    if TYPE_CHECKING:

        async def _run(
            self, event: str, sid: str, work: Callable[[Identity], Awaitable[Ack]]
        ) -> Ack: ...

        async def emit(self, event: str, data: Any = None, **kwargs: Any) -> None: ...

        async def leave_room(self, sid: str, room: str) -> None: ...

    # -- removing a participant ----------------------------------------------------------------
    async def on_remove_participant(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(RemoveParticipantPayload, data)
            session_id = self._joined.get(sid)
            if session_id is None:
                raise NotInClassroom()
            sessions = cast(ParticipantRemoval, getattr(self, "_sessions"))  # noqa: B009
            view = await sessions.remove_participant(
                identity, session_id, payload.user_id, payload.reason
            )
            return ok(session=view)

        return await self._run("remove_participant", sid, work)

    async def participant_removed_here(self, message: dict[str, Any]) -> None:
        """On every process (the cluster): the removed user's sockets here are told ``removed``
        and taken out of the classroom; their details pages are told too."""
        session_id, user_id = str(message["session_id"]), str(message["user_id"])
        for sid, identity in list(self.identities.items()):
            if identity.user_id != user_id:
                continue
            joined = self._joined.get(sid) == session_id
            if not joined and session_id not in self._watching.get(sid, set()):
                continue
            await self.emit("removed", {"session_id": session_id}, to=sid, ignore_queue=True)
            if joined:
                self._joined.pop(sid, None)
                await self.leave_room(sid, f"session:{session_id}")
                await self.leave_room(sid, f"participant:{session_id}:{user_id}")
        log.info("removed session=%s user=%s: sockets here taken out", session_id, user_id)
