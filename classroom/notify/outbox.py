"""The outbox: rows written inside the caller's transaction, so a rollback sends nothing.

``enqueue`` inserts one message unless its idempotency key is already there. Per-session counters
(webhook sequence numbers, the calendar event's SEQUENCE) live in ``outbox_counters``; reading
one locks the session's counter row until the transaction ends, which orders concurrent writers
of the same session on PostgreSQL (SQLite serialises every writer anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.orm import SessionTransaction

from classroom.db.tables import OutboxCounter, OutboxMessage, new_id, utcnow

log = logging.getLogger(__name__)

Kind = Literal["email", "webhook"]
EMAIL: Kind = "email"
WEBHOOK: Kind = "webhook"
PENDING = "pending"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"

_WAKE_HOOKS = "classroom.notify.wake"
_LISTENING = "classroom.notify.listening"


def _insert(tx: AsyncSession) -> Any:
    return postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert


async def enqueue(
    tx: AsyncSession,
    *,
    kind: Kind,
    topic: str,
    key: str,
    payload: dict[str, Any],
    recipient: str | None = None,
    session_id: str | None = None,
    subject_id: str | None = None,
    sequence: int | None = None,
    deliver_after: datetime | None = None,
    message_id: str | None = None,
) -> str | None:
    """Write one message in ``tx``; its id, or None when ``key`` was already enqueued."""
    now = utcnow()
    due = deliver_after or now
    row_id = message_id or new_id()
    stmt = (
        _insert(tx)(OutboxMessage)
        .values(
            id=row_id,
            kind=kind,
            topic=topic,
            idempotency_key=key,
            session_id=session_id,
            subject_id=subject_id,
            recipient=recipient,
            sequence=sequence,
            payload=payload,
            status=PENDING,
            deliver_after=due,
            next_attempt_at=due,
            attempts=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.idempotency_key])
        .returning(OutboxMessage.id)
    )
    inserted = (await tx.execute(stmt)).scalar_one_or_none()
    if inserted is None:
        log.info(
            "outbox: %s %s for session %s already enqueued (key %s)", kind, topic, session_id, key
        )
        return None
    log.debug("outbox %s: enqueued %s %s for session %s", row_id, kind, topic, session_id)
    return row_id


async def revive(
    tx: AsyncSession, key: str, payload: dict[str, Any], deliver_after: datetime
) -> bool:
    """Put a cancelled message back to pending (a withdrawn reminder that is wanted again)."""
    result = await tx.execute(
        update(OutboxMessage)
        .where(OutboxMessage.idempotency_key == key, OutboxMessage.status == CANCELLED)
        .values(
            status=PENDING,
            payload=payload,
            deliver_after=deliver_after,
            next_attempt_at=deliver_after,
            attempts=0,
            last_error=None,
            leased_until=None,
            lease_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def key_exists(tx: AsyncSession, key: str) -> bool:
    found = await tx.execute(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key).limit(1)
    )
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class Counters:
    webhook_sequence: int
    calendar_sequence: int


async def lock_counters(tx: AsyncSession, session_id: str) -> Counters:
    """The session's counters, locked (PostgreSQL ``FOR UPDATE``) until ``tx`` ends."""
    await tx.execute(
        _insert(tx)(OutboxCounter)
        .values(session_id=session_id, webhook_sequence=0, calendar_sequence=0)
        .on_conflict_do_nothing(index_elements=[OutboxCounter.session_id])
    )
    row = (
        await tx.execute(
            select(OutboxCounter.webhook_sequence, OutboxCounter.calendar_sequence)
            .where(OutboxCounter.session_id == session_id)
            .with_for_update()
        )
    ).one()
    return Counters(webhook_sequence=row[0], calendar_sequence=row[1])


async def next_webhook_sequence(tx: AsyncSession, session_id: str) -> int:
    """Allocate the session's next webhook sequence number (1, 2, ...; no gaps once committed)."""
    counters = await lock_counters(tx, session_id)
    value = counters.webhook_sequence + 1
    await tx.execute(
        update(OutboxCounter)
        .where(OutboxCounter.session_id == session_id)
        .values(webhook_sequence=value)
    )
    return value


async def calendar_sequence(tx: AsyncSession, session_id: str, *, bump: bool = False) -> int:
    """The calendar event's SEQUENCE; ``bump`` raises it first (a new time or a cancellation)."""
    counters = await lock_counters(tx, session_id)
    value = counters.calendar_sequence
    if bump:
        value += 1
        await tx.execute(
            update(OutboxCounter)
            .where(OutboxCounter.session_id == session_id)
            .values(calendar_sequence=value)
        )
    return value


async def cancel_pending(tx: AsyncSession, session_id: str, topic: str, why: str) -> int:
    """Withdraw the session's pending messages of ``topic`` that no worker is delivering now."""
    now = utcnow()
    result = await tx.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.session_id == session_id,
            OutboxMessage.topic == topic,
            OutboxMessage.status == PENDING,
            or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until <= now),
        )
        .values(status=CANCELLED, last_error=why)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info(
            "outbox: withdrew %d pending %s for session %s (%s)", count, topic, session_id, why
        )
    return count


def after_commit(tx: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once when ``tx`` commits (never on rollback): wakes the worker."""
    sync: SyncSession = tx.sync_session
    hooks: list[Callable[[], None]] = sync.info.setdefault(_WAKE_HOOKS, [])
    if callback not in hooks:
        hooks.append(callback)
    if sync.info.get(_LISTENING):
        return
    sync.info[_LISTENING] = True
    event.listen(sync, "after_commit", _run_hooks)
    event.listen(sync, "after_soft_rollback", _drop_hooks)


def _run_hooks(session: SyncSession) -> None:
    for hook in session.info.pop(_WAKE_HOOKS, []):
        try:
            hook()
        except Exception:
            log.exception("outbox: wake-up hook failed")


def _drop_hooks(session: SyncSession, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_WAKE_HOOKS, None)
