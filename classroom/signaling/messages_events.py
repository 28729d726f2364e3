"""Socket.IO handlers for Messages, mixed into the ``/classroom`` namespace.

Every connected socket is in the room ``user:<id>`` of its user, so a message reaches that user
on any page. The namespace is the messages service's ``LiveDelivery`` (``online``/``deliver``).
Handlers ack ``{"ok": true, ...}`` or ``{"ok": false, "error": {...}}``; see docs/protocol.md,
"Messages".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from classroom.auth import Identity
from classroom.errors import NotInClassroom, ServiceUnavailable
from classroom.signaling.schemas import ok, parse

log = logging.getLogger(__name__)

Ack = dict[str, Any]


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SendMessagePayload(_Payload):
    text: StrictStr = Field(max_length=20_000)  # cleaned, then at most 2000 (message_too_long)
    to: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    client_id: StrictStr | None = Field(default=None, max_length=64)


class ClassroomMessages(Protocol):
    """The part of the messages service the classroom uses."""

    async def send_in_classroom(
        self,
        identity: Identity,
        session_id: str,
        text: object,
        to: str | None = None,
        client_id: object = None,
    ) -> dict[str, Any]: ...


class MessagesSignaling:
    """``send_message``; the ``message`` and ``conversation_read`` events (``deliver``)."""

    messages: ClassroomMessages | None = None  # set by create_app
    identities: dict[str, Identity]
    _joined: dict[str, str]

    if TYPE_CHECKING:

        async def _run(
            self, event: str, sid: str, work: Callable[[Identity], Awaitable[Ack]]
        ) -> Ack: ...

        async def emit(self, event: str, data: Any = None, **kwargs: Any) -> None: ...

        async def enter_room(self, sid: str, room: str) -> None: ...

    # -- every socket is reachable through its user ------------------------------------------
    async def enter_user_room(self, sid: str, identity: Identity) -> None:
        await self.enter_room(sid, user_room(identity.user_id))

    async def online(self, user_ids: Collection[str]) -> set[str]:
        """Users of ``user_ids`` with a socket connected to this process."""
        wanted = set(user_ids)
        return {i.user_id for i in self.identities.values() if i.user_id in wanted}

    async def deliver(self, event: str, payload: dict[str, Any], user_ids: Sequence[str]) -> None:
        """To every socket of these users, on any process (through the Socket.IO manager)."""
        rooms = [user_room(u) for u in dict.fromkeys(user_ids)]
        if rooms:
            await self.emit(event, payload, room=rooms)

    # -- the classroom's chat panel ------------------------------------------------------------
    async def on_send_message(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(SendMessagePayload, data)
            session_id = self._joined.get(sid)
            if session_id is None:
                raise NotInClassroom(
                    "Join a classroom to chat there; elsewhere use /api/conversations."
                )
            if self.messages is None:
                raise ServiceUnavailable("Messages are not available.")
            message = await self.messages.send_in_classroom(
                identity, session_id, payload.text, payload.to, payload.client_id
            )
            return ok(message=message)

        return await self._run("send_message", sid, work)
