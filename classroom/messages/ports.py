"""What the messages service needs from the outside: live delivery and offline email."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class LiveDelivery(Protocol):
    """Connected users' sockets (the ``/classroom`` namespace puts each in ``user:<id>``)."""

    async def online(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` with a connected socket (on this process at least: a user
        connected only elsewhere counts as offline and gets an email as well)."""

    async def deliver(self, event: str, payload: dict[str, Any], user_ids: Sequence[str]) -> None:
        """Emit ``event`` to every connected socket of ``user_ids``."""


class OfflineMail(Protocol):
    """Email for a recipient with no connected socket, written in the message's transaction."""

    async def message_received(
        self,
        tx: AsyncSession,
        *,
        message_id: int,
        conversation_id: str,
        session_id: str | None,
        sender_id: str,
        recipient_id: str,
        text: str,
    ) -> bool: ...
