"""The outbox: rows written inside the caller's transaction, so a rollback sends nothing.

``enqueue`` inserts one message unless its idempotency key is already there. Per-session counters
(webhook sequence numbers, the calendar event's SEQUENCE) live in ``outbox_counters``; reading
one locks the session's counter row until the transaction ends, which orders concurrent writers
of the same session on PostgreSQL (SQLite serialises every writer anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, bindparam, event, or_, select, update
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


def _insert(tx: AsyncSession) -> Any:
    return postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert


def _outbox_table() -> Table:
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    return table


_OUTBOX = _outbox_table()
_BUILT: dict[tuple[str, str], Any] = {}  # (dialect, name) -> a statement built once


def _statement(tx: AsyncSession, name: str, build: Callable[[Any], Any]) -> Any:
    """The dialect's statement ``name``, built once by ``build(insert)`` (building a statement
    costs about as much as running it)."""
    dialect = tx.get_bind().dialect.name
    stmt = _BUILT.get((dialect, name))
    if stmt is None:
        stmt = _BUILT[dialect, name] = build(_insert(tx))
    return stmt


def _skipping_duplicates(tx: AsyncSession, returning: str) -> Any:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING <returning>``: for one row,
    or for many sent as one statement (returning ``idempotency_key``: which of them were new)."""
    return _statement(
        tx,
        returning,
        lambda insert: (
            insert(_OUTBOX)
            .on_conflict_do_nothing(index_elements=[_OUTBOX.c.idempotency_key])
            .returning(_OUTBOX.c[returning])
        ),
    )


_CANCEL_PENDING = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.session_id == bindparam("p_session_id"),
        _OUTBOX.c.topic == bindparam("p_topic"),
        _OUTBOX.c.status == PENDING,
        or_(_OUTBOX.c.leased_until.is_(None), _OUTBOX.c.leased_until <= bindparam("p_now")),
    )
    .values(status=CANCELLED, last_error=bindparam("p_why"))
)


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
    row = {
        "id": row_id,
        "kind": kind,
        "topic": topic,
        "idempotency_key": key,
        "session_id": session_id,
        "subject_id": subject_id,
        "recipient": recipient,
        "sequence": sequence,
        "payload": payload,
        "status": PENDING,
        "deliver_after": due,
        "next_attempt_at": due,
        "attempts": 0,
        "created_at": now,
    }
    inserted = (await tx.execute(_skipping_duplicates(tx, "id"), row)).scalar_one_or_none()
    if inserted is None:
        log.info(
            "outbox: %s %s for session %s already enqueued (key %s)", kind, topic, session_id, key
        )
        return None
    log.debug("outbox %s: enqueued %s %s for session %s", row_id, kind, topic, session_id)
    return row_id


@dataclass(frozen=True, slots=True)
class Pending:
    """One message for ``enqueue_many``."""

    topic: str
    key: str
    payload: dict[str, Any]
    recipient: str | None = None
    subject_id: str | None = None


async def enqueue_many(
    tx: AsyncSession, kind: Kind, session_id: str | None, messages: Sequence[Pending]
) -> list[str]:
    """Write ``messages`` in ``tx`` with one statement; the keys written (a key already
    enqueued is skipped, as ``enqueue`` does)."""
    if not messages:
        return []
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "kind": kind,
            "topic": m.topic,
            "idempotency_key": m.key,
            "session_id": session_id,
            "subject_id": m.subject_id,
            "recipient": m.recipient,
            "sequence": None,
            "payload": m.payload,
            "status": PENDING,
            "deliver_after": now,
            "next_attempt_at": now,
            "attempts": 0,
            "created_at": now,
        }
        for m in messages
    ]
    written = set((await tx.execute(_skipping_duplicates(tx, "idempotency_key"), rows)).scalars())
    for m in messages:
        if m.key in written:
            log.debug("outbox: enqueued %s %s for session %s", kind, m.topic, session_id)
        else:
            log.info(
                "outbox: %s %s for session %s already enqueued (key %s)",
                kind,
                m.topic,
                session_id,
                m.key,
            )
    return [m.key for m in messages if m.key in written]


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


_KEY_EXISTS = select(_OUTBOX.c.id).where(_OUTBOX.c.idempotency_key == bindparam("key")).limit(1)


async def key_exists(tx: AsyncSession, key: str) -> bool:
    found = await tx.execute(_KEY_EXISTS, {"key": key})
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class Counters:
    webhook_sequence: int
    calendar_sequence: int


def _counter_table() -> Table:
    table = OutboxCounter.__table__
    assert isinstance(table, Table)
    return table


_COUNTERS = _counter_table()
_BUMP = (
    update(_COUNTERS)
    .where(_COUNTERS.c.session_id == bindparam("b_session_id"))
    .values(webhook_sequence=_COUNTERS.c.webhook_sequence + 1)
    .returning(_COUNTERS.c.webhook_sequence)
)


async def lock_counters(tx: AsyncSession, session_id: str) -> Counters:
    """The session's counters, locked until ``tx`` ends (one statement: an upsert that leaves
    them as they are and returns them; on PostgreSQL it holds the row's lock like ``FOR
    UPDATE``)."""
    stmt = _statement(
        tx,
        "lock_counters",
        lambda insert: (
            insert(_COUNTERS)
            .on_conflict_do_update(
                index_elements=[_COUNTERS.c.session_id],
                set_={"webhook_sequence": _COUNTERS.c.webhook_sequence},
            )
            .returning(_COUNTERS.c.webhook_sequence, _COUNTERS.c.calendar_sequence)
        ),
    )
    params = {"session_id": session_id, "webhook_sequence": 0, "calendar_sequence": 0}
    row = (await tx.execute(stmt, params)).one()
    return Counters(webhook_sequence=row[0], calendar_sequence=row[1])


async def bump_webhook_sequence(tx: AsyncSession, session_id: str) -> int:
    """The next webhook sequence number of a session whose counters ``tx`` has locked
    (``lock_counters``)."""
    found = await tx.execute(_BUMP, {"b_session_id": session_id})
    return int(found.scalar_one())


async def next_webhook_sequence(tx: AsyncSession, session_id: str) -> int:
    """Allocate the session's next webhook sequence number (1, 2, ...; no gaps once committed)."""
    await lock_counters(tx, session_id)
    return await bump_webhook_sequence(tx, session_id)


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
    params = {"p_session_id": session_id, "p_topic": topic, "p_now": utcnow(), "p_why": why}
    result = await tx.execute(_CANCEL_PENDING, params)
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info(
            "outbox: withdrew %d pending %s for session %s (%s)", count, topic, session_id, why
        )
    return count


def after_commit(tx: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once when ``tx`` commits (never on rollback): wakes the worker."""
    hooks: list[Callable[[], None]] = tx.sync_session.info.setdefault(_WAKE_HOOKS, [])
    if callback not in hooks:
        hooks.append(callback)


# Listening on the Session class once, not on each session (registering a listener costs more
# than the rest of what a notification adds to its transaction); sessions without hooks pass.
@event.listens_for(SyncSession, "after_commit")
def _run_hooks(session: SyncSession) -> None:
    for hook in session.info.pop(_WAKE_HOOKS, []):
        try:
            hook()
        except Exception:
            log.exception("outbox: wake-up hook failed")


@event.listens_for(SyncSession, "after_soft_rollback")
def _drop_hooks(session: SyncSession, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_WAKE_HOOKS, None)
