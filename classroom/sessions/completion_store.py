"""The reads and writes of a completion, each in as few statements as it takes.

Completing runs at the end of every lesson, and on SQLite every statement of its write
transaction is a hop to the database thread while the one writer lock is held: the session, its
students, the tutor's rate and the names the answer shows come in one statement, the money rows
in one statement per table. The statements are built once, with bound parameters (building
and keying a statement costs about as much as running it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from classroom.auth import Identity
from classroom.db.tables import (
    Attendance,
    Invoice,
    LedgerEntry,
    SessionParticipant,
    SessionTransition,
    TutorProfile,
    User,
    table,
)
from classroom.db.tables import Session as SessionRow
from classroom.sessions import model, store


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


_SESSION_ID: BindParameter[str] = bindparam("session_id")
_LAST_LEFT = (
    select(func.max(Attendance.left_at))
    .where(Attendance.session_id == _SESSION_ID)
    .scalar_subquery()
)
_FIND = (
    select(SessionRow, SessionParticipant, _LAST_LEFT)
    .outerjoin(SessionParticipant, SessionParticipant.session_id == SessionRow.id)
    .where(SessionRow.id == _SESSION_ID)
    .order_by(SessionParticipant.student_id)
)
_TUTOR, _STUDENT, _ACTOR = aliased(User), aliased(User), aliased(User)
_LOCK = (
    select(
        SessionRow,
        SessionParticipant,
        TutorProfile.hourly_rate_cents,
        _TUTOR.name,
        _STUDENT.name,
        _ACTOR.name,
    )
    .outerjoin(SessionParticipant, SessionParticipant.session_id == SessionRow.id)
    .outerjoin(TutorProfile, TutorProfile.tutor_id == SessionRow.tutor_id)
    .outerjoin(_TUTOR, _TUTOR.id == SessionRow.tutor_id)
    .outerjoin(_STUDENT, _STUDENT.id == SessionParticipant.student_id)
    .outerjoin(_ACTOR, _ACTOR.id == bindparam("actor_id"))
    .where(SessionRow.id == _SESSION_ID)
    .order_by(SessionParticipant.student_id)
    .with_for_update(of=SessionRow)
)
_LAST_LEAVE = select(_LAST_LEFT)
_STAYS = (
    select(Attendance.user_id, Attendance.role, Attendance.joined_at, Attendance.left_at)
    .where(Attendance.session_id == _SESSION_ID)
    .order_by(Attendance.joined_at, Attendance.id)
)
_SESSIONS = table(SessionRow)
COMPLETED_COLUMNS = (
    "state",
    "state_reason",
    "logged_minutes",
    "recap",
    "needs_review",
    "completed_at",
    "completed_by",
    "classroom_closed_at",
    "updated_at",
)
_COMPLETE = (
    update(_SESSIONS)
    .where(
        _SESSIONS.c.id == _SESSION_ID,
        _SESSIONS.c.state.in_(bindparam("allowed_states", expanding=True)),
    )
    .values({column: bindparam(f"new_{column}") for column in COMPLETED_COLUMNS})
)
_TRANSITION = insert(table(SessionTransition))
_INVOICES = insert(table(Invoice))
_INVOICE_COLUMNS = tuple(column.key for column in table(Invoice).columns)
_LEDGER = insert(table(LedgerEntry))


@dataclass(slots=True)
class Found:
    """The session as the completing caller sees it, with its classroom's last leave."""

    loaded: store.Loaded
    last_leave: datetime | None  # the latest stay end, or the recorded last leave

    def deadline(self, window_hours: int) -> datetime:
        row = self.loaded.row
        return model.logging_deadline(
            model.ends_at(row.starts_at, row.duration_minutes), self.last_leave, window_hours
        )


async def find(tx: AsyncSession, identity: Identity, session_id: str) -> Found | None:
    """``store.load`` and the classroom's last leave in one statement (None: unknown or not
    visible to the caller, as ``store.load``)."""
    if not session_id or len(session_id) > 36:
        return None
    rows = (await tx.execute(_FIND, {"session_id": session_id})).all()
    if not rows:
        return None
    row = rows[0][0]
    participants = [r[1] for r in rows if r[1] is not None]
    children = (
        await store.children_of(tx, identity.user_id)
        if identity.role == "parent"
        else frozenset[str]()
    )
    relation = store.relation_of(identity, row, participants, children)
    if relation is None:
        return None
    loaded = store.Loaded(row, participants, relation, identity.user_id, children)
    return Found(loaded, _latest(rows[0][2], row.last_leave_at))


@dataclass(slots=True)
class Locked:
    """The session locked for the completion (``FOR UPDATE`` on PostgreSQL; SQLite's writer
    holds the database), with what the completion needs besides it."""

    loaded: store.Loaded
    hourly_rate_cents: int | None  # the tutor's rate, None for the default
    known: dict[str, str]  # names of the tutor, the students and the caller

    def rate(self, default_rate_cents: int) -> int:
        rate = self.hourly_rate_cents
        return default_rate_cents if rate is None else rate


async def lock(tx: AsyncSession, identity: Identity, session_id: str) -> Locked | None:
    """The session, its students, the tutor's rate and the names of tutor, students and caller,
    in one statement, the session row locked (None: unknown or not the caller's to see)."""
    params = {"session_id": session_id, "actor_id": identity.user_id}
    rows = (await tx.execute(_LOCK, params)).all()
    if not rows:
        return None
    row = rows[0][0]
    participants = [r[1] for r in rows if r[1] is not None]
    relation = store.relation_of(identity, row, participants, frozenset())
    if relation is None:
        return None
    known: dict[str, str] = {}
    first = rows[0]
    if first[3] is not None:
        known[row.tutor_id] = first[3]
    if first[5] is not None:
        known[identity.user_id] = first[5]
    for r in rows:
        if r[1] is not None and r[4] is not None:
            known[r[1].student_id] = r[4]
    loaded = store.Loaded(row, participants, relation, identity.user_id)
    return Locked(loaded, first[2], known)


async def stays(tx: AsyncSession, session_id: str) -> list[model.Stay]:
    """``store.stays`` without loading ORM objects."""
    rows = await tx.execute(_STAYS, {"session_id": session_id})
    return [model.Stay(user_id, role, joined, left) for user_id, role, joined, left in rows]


async def last_leave(tx: AsyncSession, row: SessionRow) -> datetime | None:
    """The classroom's last leave as ``find`` reads it, for a session already loaded."""
    latest = (await tx.execute(_LAST_LEAVE, {"session_id": row.id})).scalar()
    return _latest(latest, row.last_leave_at)


async def complete(
    tx: AsyncSession, session_id: str, allowed_states: Sequence[str], changes: dict[str, Any]
) -> bool:
    """Set ``changes`` (every one of ``COMPLETED_COLUMNS``) on the session if its state is still
    one of ``allowed_states``; whether it was."""
    params = {f"new_{column}": changes[column] for column in COMPLETED_COLUMNS}
    params |= {"session_id": session_id, "allowed_states": list(allowed_states)}
    result = await tx.execute(_COMPLETE, params)
    return getattr(result, "rowcount", 0) == 1


async def add_transition(
    tx: AsyncSession,
    session_id: str,
    actor_id: str | None,
    from_state: str,
    to_state: str,
    at: datetime,
    detail: str | None,
) -> None:
    """``store.record_transition``, written at once (no unit of work to flush)."""
    await tx.execute(
        _TRANSITION, store.transition_row(session_id, actor_id, from_state, to_state, at, detail)
    )


async def add_money(
    tx: AsyncSession, invoices: Sequence[Invoice], ledger: Sequence[dict[str, Any]]
) -> None:
    """The invoices, then their ledger entries: one statement each."""
    if invoices:
        rows = [{c: getattr(i, c) for c in _INVOICE_COLUMNS} for i in invoices]
        await tx.execute(_INVOICES, rows)
    if ledger:
        await tx.execute(_LEDGER, list(ledger))
