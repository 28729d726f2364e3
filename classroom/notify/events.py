"""Webhook events: numbered per session, written in the caller's transaction.

Each event gets the session's next sequence number (1, 2, 3 ... without gaps once committed; the
session's counter row is locked until the transaction ends, so concurrent writers queue). The
body is fixed at enqueue time, so every retry sends the same bytes and the same signature.
``participant.left`` is only written after a ``participant.joined`` of that user, and a second
``joined`` only after a ``left``: the receiver sees strict joined/left alternation per user.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.tables import OutboxMessage, new_id, utcnow
from classroom.notify.outbox import (
    WEBHOOK,
    bump_webhook_sequence,
    enqueue,
    key_exists,
    lock_counters,
)

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "participant.joined",
    "participant.left",
    "session.started",
    "session.completed",
    "session.cancelled",
    "session.missed",
)
_PRESENCE = ("participant.joined", "participant.left")
_LAST_PRESENCE = (  # built once
    select(OutboxMessage.topic)
    .where(
        OutboxMessage.kind == WEBHOOK,
        OutboxMessage.session_id == bindparam("session_id"),
        OutboxMessage.subject_id == bindparam("user_id"),
        OutboxMessage.topic.in_(_PRESENCE),
    )
    .order_by(OutboxMessage.sequence.desc())
    .limit(1)
)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def enqueue_event(
    tx: AsyncSession,
    *,
    session_id: str,
    event_type: str,
    data: dict[str, Any],
    key: str | None = None,
    subject_id: str | None = None,
    at: datetime | None = None,
    locked: bool = False,
) -> str | None:
    """Write one webhook event; its id, or None when ``key`` was already written. ``locked``:
    ``tx`` holds the session's counters already (``lock_counters``)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not locked:
        await lock_counters(tx, session_id)
    if key is not None and await key_exists(tx, key):
        log.info("webhook %s for session %s already enqueued (key %s)", event_type, session_id, key)
        return None
    sequence = await bump_webhook_sequence(tx, session_id)
    event_id = new_id()
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": iso(at or utcnow()),
        "session_id": session_id,
        "sequence": sequence,
        "data": data,
    }
    return await enqueue(
        tx,
        kind=WEBHOOK,
        topic=event_type,
        key=key or f"webhook:{session_id}:{sequence}",
        payload=body,
        session_id=session_id,
        subject_id=subject_id,
        sequence=sequence,
        message_id=event_id,
    )


async def last_presence_event(tx: AsyncSession, session_id: str, user_id: str) -> str | None:
    """``participant.joined``/``participant.left``: the latest written for this user, if any."""
    params = {"session_id": session_id, "user_id": user_id}
    found: str | None = (await tx.execute(_LAST_PRESENCE, params)).scalar_one_or_none()
    return found


async def presence_event(
    tx: AsyncSession,
    *,
    session_id: str,
    user_id: str,
    role: str,
    joined: bool,
    reason: str | None = None,
    at: datetime | None = None,
) -> str | None:
    """``participant.joined`` or ``participant.left``, keeping joined/left alternation."""
    event_type = "participant.joined" if joined else "participant.left"
    await lock_counters(tx, session_id)
    last = await last_presence_event(tx, session_id, user_id)
    if joined and last == "participant.joined":
        log.info("webhook: %s already joined session %s; joined not repeated", user_id, session_id)
        return None
    if not joined and last != "participant.joined":
        log.warning(
            "webhook: %s left session %s without a joined event; left not sent",
            user_id,
            session_id,
        )
        return None
    data: dict[str, Any] = {"user_id": user_id, "role": role, "at": iso(at or utcnow())}
    if not joined:
        data["reason"] = reason or "clean"
    return await enqueue_event(
        tx,
        session_id=session_id,
        event_type=event_type,
        data=data,
        subject_id=user_id,
        at=at,
        locked=True,
    )
