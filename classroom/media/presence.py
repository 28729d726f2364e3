"""Media follows presence: a room listener that opens and closes media connections.

Register it with ``RoomService.add_listener``: a participant's media connection opens when they
join (first connection), survives while they are *reconnecting*, and closes when presence says
they left (clean, timeout, removed, closed) or the classroom closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from classroom.media.port import MediaGateway, SignalSender

log = logging.getLogger(__name__)


class _Member(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def name(self) -> str: ...


class _Snapshot(Protocol):
    @property
    def session_id(self) -> str: ...


class _Change(Protocol):
    """The parts of ``classroom.rooms.model.Change`` used here."""

    @property
    def snapshot(self) -> _Snapshot: ...

    @property
    def joined(self) -> tuple[_Member, ...]: ...

    @property
    def left(self) -> tuple[tuple[_Member, str], ...]: ...


SenderFor = Callable[[str, str], SignalSender]
"""``sender_for(session_id, user_id)``: emits to every socket of that participant."""


class MediaFollowsPresence:
    def __init__(self, media: MediaGateway, sender_for: SenderFor) -> None:
        self._media = media
        self._sender_for = sender_for

    async def presence_changed(self, change: _Change) -> None:
        session_id = change.snapshot.session_id
        for member, reason in change.left:
            log.debug("media: closing session=%s user=%s (%s)", session_id, member.user_id, reason)
            await self._media.close_participant(session_id, member.user_id)
        for member in change.joined:
            await self._media.open_participant(
                session_id,
                member.user_id,
                member.name,
                self._sender_for(session_id, member.user_id),
            )

    async def classroom_closed(self, session_id: str, reason: str) -> None:
        await self._media.close_room(session_id)
