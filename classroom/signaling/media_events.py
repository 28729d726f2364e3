"""Socket.IO handlers for WebRTC negotiation, mixed into the ``/classroom`` namespace.

The namespace provides ``self.media`` (a :class:`~classroom.media.port.MediaGateway` or ``None``
when media is off) and ``self.current_room(sid)``. Every handler acks ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code", "message"}}`` and never raises. See docs/protocol.md, "Media".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.auth import Identity
from classroom.errors import ClassroomError, InternalError, NotInClassroom
from classroom.media.port import MediaGateway, MediaUnavailable
from classroom.signaling.schemas import ok, parse, refusal

log = logging.getLogger(__name__)

Ack = dict[str, Any]
MAX_SDP = 100_000


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MediaOfferPayload(_Payload):
    sdp: str = Field(min_length=1, max_length=MAX_SDP)
    type: Literal["offer"] = "offer"


class MediaAnswerPayload(_Payload):
    sdp: str = Field(min_length=1, max_length=MAX_SDP)
    type: Literal["answer"] = "answer"


class IceCandidateInit(_Payload):
    candidate: str = Field(default="", max_length=1000)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1023)
    usernameFragment: str | None = Field(default=None, max_length=256)


class MediaCandidatePayload(_Payload):
    candidate: IceCandidateInit | None = None


class EmptyPayload(_Payload):
    pass


Work = Callable[[MediaGateway, str, Identity], Awaitable[Ack]]


class MediaSignaling:
    """``media_config``, ``media_offer``, ``media_answer``, ``media_candidate``."""

    media: MediaGateway | None

    if TYPE_CHECKING:

        def current_room(self, sid: str) -> tuple[str, Identity] | None: ...

    async def on_media_config(self, sid: str, data: Any = None) -> Ack:
        async def work(media: MediaGateway, session_id: str, identity: Identity) -> Ack:
            parse(EmptyPayload, data)
            return ok(ice_servers=media.ice_servers(identity.user_id))

        return await self._media_event("media_config", sid, work)

    async def on_media_offer(self, sid: str, data: Any = None) -> Ack:
        async def work(media: MediaGateway, session_id: str, identity: Identity) -> Ack:
            payload = parse(MediaOfferPayload, data)
            answer = await media.handle_offer(
                session_id, identity.user_id, payload.sdp, payload.type
            )
            return ok(
                answer={"sdp": answer["sdp"], "type": answer["type"]},
                tracks=answer.get("tracks", []),
            )

        return await self._media_event("media_offer", sid, work)

    async def on_media_answer(self, sid: str, data: Any = None) -> Ack:
        async def work(media: MediaGateway, session_id: str, identity: Identity) -> Ack:
            payload = parse(MediaAnswerPayload, data)
            await media.handle_answer(session_id, identity.user_id, payload.sdp, payload.type)
            return ok()

        return await self._media_event("media_answer", sid, work)

    async def on_media_candidate(self, sid: str, data: Any = None) -> Ack:
        async def work(media: MediaGateway, session_id: str, identity: Identity) -> Ack:
            payload = parse(MediaCandidatePayload, data)
            candidate = None if payload.candidate is None else payload.candidate.model_dump()
            await media.handle_candidate(session_id, identity.user_id, candidate)
            return ok()

        return await self._media_event("media_candidate", sid, work)

    async def _media_event(self, event: str, sid: str, work: Work) -> Ack:
        try:
            media = self.media
            if media is None:
                raise MediaUnavailable()
            room = self.current_room(sid)
            if room is None:
                raise NotInClassroom("Join a classroom before negotiating audio and video.")
            session_id, identity = room
            return await work(media, session_id, identity)
        except ClassroomError as exc:
            log.info("media: refused event=%s sid=%s code=%s", event, sid, exc.code)
            return refusal(exc)
        except Exception:
            log.exception("media: event %s failed sid=%s", event, sid)
            return refusal(InternalError())
