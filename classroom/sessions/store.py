"""Reading and writing sessions with SQLAlchemy: the queries the use cases share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.tables import (
    Attendance,
    Invoice,
    ParentLink,
    Review,
    SessionParticipant,
    SessionTransition,
    TutorProfile,
    User,
)
from classroom.db.tables import Session as SessionRow
from classroom.sessions import model
from classroom.sessions.calendar import Window, parse_window, zone

Relation = Literal["admin", "tutor", "student", "former_student", "parent"]


@dataclass(slots=True)
class Loaded:
    """A session with its students, as one caller sees it."""

    row: SessionRow
    participants: list[SessionParticipant]
    relation: Relation
    viewer_id: str
    children: frozenset[str] = field(default_factory=frozenset)  # a parent's linked students

    @property
    def active(self) -> list[SessionParticipant]:
        """Students still booked (not withdrawn or removed)."""
        return [p for p in self.participants if not p.removed]

    def participant(self, student_id: str) -> SessionParticipant | None:
        return next((p for p in self.participants if p.student_id == student_id), None)

    @property
    def all_accepted(self) -> bool:
        active = self.active
        return bool(active) and all(p.acceptance == "accepted" for p in active)

    @property
    def sees_private(self) -> bool:
        """Notes and the whole money picture: the session's tutor and support."""
        return self.relation in ("tutor", "admin")


async def children_of(tx: AsyncSession, parent_id: str) -> frozenset[str]:
    rows = await tx.execute(select(ParentLink.student_id).where(ParentLink.parent_id == parent_id))
    return frozenset(rows.scalars())


def relation_of(
    identity: Identity,
    row: SessionRow,
    participants: Sequence[SessionParticipant],
    children: frozenset[str],
) -> Relation | None:
    if identity.is_admin:
        return "admin"
    if identity.role == "tutor" and row.tutor_id == identity.user_id:
        return "tutor"
    if identity.role == "student":
        for p in participants:
            if p.student_id == identity.user_id:
                return "former_student" if p.removed else "student"
        return None
    if identity.role == "parent" and any(p.student_id in children for p in participants):
        return "parent"
    return None


async def load(
    tx: AsyncSession, identity: Identity, session_id: str, *, for_update: bool = False
) -> Loaded | None:
    """The session if the caller may see it (None otherwise: unknown and invisible look alike)."""
    if not session_id or len(session_id) > 36:
        return None
    query = select(SessionRow).where(SessionRow.id == session_id)
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).scalar_one_or_none()
    if row is None:
        return None
    participants = list(
        (
            await tx.execute(
                select(SessionParticipant)
                .where(SessionParticipant.session_id == session_id)
                .order_by(SessionParticipant.student_id)
            )
        ).scalars()
    )
    children = await children_of(tx, identity.user_id) if identity.role == "parent" else frozenset()
    relation = relation_of(identity, row, participants, children)
    if relation is None:
        return None
    return Loaded(row, participants, relation, identity.user_id, children)


async def visible_filter(tx: AsyncSession, identity: Identity) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the sessions the caller may see (None: everything)."""
    if identity.is_admin:
        return None
    if identity.role == "tutor":
        return SessionRow.tutor_id == identity.user_id
    if identity.role == "student":
        students: Iterable[str] = (identity.user_id,)
    else:
        students = await children_of(tx, identity.user_id)
    return exists().where(
        SessionParticipant.session_id == SessionRow.id,
        SessionParticipant.student_id.in_(list(students)),
    )


async def participants_of(
    tx: AsyncSession, session_ids: Sequence[str]
) -> dict[str, list[SessionParticipant]]:
    found: dict[str, list[SessionParticipant]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return found
    rows = await tx.execute(
        select(SessionParticipant)
        .where(SessionParticipant.session_id.in_(list(session_ids)))
        .order_by(SessionParticipant.student_id)
    )
    for p in rows.scalars():
        found[p.session_id].append(p)
    return found


async def names(tx: AsyncSession, user_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted({u for u in user_ids if u})
    if not ids:
        return {}
    rows = await tx.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


async def roles(tx: AsyncSession, user_ids: Iterable[str]) -> dict[str, str]:
    rows = await tx.execute(select(User.id, User.role).where(User.id.in_(list(user_ids))))
    return {user_id: role for user_id, role in rows}


@dataclass(frozen=True, slots=True)
class Profile:
    tutor_id: str
    hourly_rate_cents: int | None
    timezone: str
    windows: list[Window]

    def rate(self, default_rate_cents: int) -> int:
        return default_rate_cents if self.hourly_rate_cents is None else self.hourly_rate_cents


async def profile(tx: AsyncSession, tutor_id: str) -> Profile:
    row = await tx.get(TutorProfile, tutor_id)
    if row is None:
        return Profile(tutor_id, None, "UTC", [])
    windows = [parse_window(w["weekday"], w["start"], w["end"]) for w in row.availability or []]
    return Profile(tutor_id, row.hourly_rate_cents, row.timezone or "UTC", windows)


async def stays(tx: AsyncSession, session_id: str) -> list[model.Stay]:
    rows = await tx.execute(
        select(Attendance)
        .where(Attendance.session_id == session_id)
        .order_by(Attendance.joined_at, Attendance.id)
    )
    return [model.Stay(a.user_id, a.role, a.joined_at, a.left_at) for a in rows.scalars()]


def last_leave(row: SessionRow, session_stays: Sequence[model.Stay]) -> datetime | None:
    """The classroom's last leave: the latest stay end, or the recorded last leave."""
    ends = [s.left_at for s in session_stays if s.left_at is not None]
    return last_leave_after(row, max(ends, default=None))


def last_leave_after(row: SessionRow, last_stay_end: datetime | None) -> datetime | None:
    """The later of the latest stay end (read with the session) and the recorded last leave."""
    return max(filter(None, (last_stay_end, row.last_leave_at)), default=None)


# The latest stay end of a session's classroom, as a column of a statement on the sessions.
LAST_STAY_END = (
    select(func.max(Attendance.left_at))
    .where(Attendance.session_id == SessionRow.id)
    .correlate(SessionRow)
    .scalar_subquery()
)


async def last_leaves(tx: AsyncSession, session_ids: Sequence[str]) -> dict[str, datetime]:
    """The latest stay end of each session's classroom (sessions never entered are absent)."""
    if not session_ids:
        return {}
    rows = await tx.execute(
        select(SessionRow.id, LAST_STAY_END).where(SessionRow.id.in_(list(session_ids)))
    )
    return {sid: at for sid, at in rows if at is not None}


def deadline(row: SessionRow, session_stays: Sequence[model.Stay], window_hours: int) -> datetime:
    return _deadline(row, last_leave(row, session_stays), window_hours)


def deadline_after(row: SessionRow, last_stay_end: datetime | None, window_hours: int) -> datetime:
    """The logging deadline, given the latest stay end read with the session (``last_leaves``)."""
    return _deadline(row, last_leave_after(row, last_stay_end), window_hours)


def _deadline(row: SessionRow, last: datetime | None, window_hours: int) -> datetime:
    """The last leave anchors the deadline when later than the scheduled end."""
    return model.logging_deadline(
        model.ends_at(row.starts_at, row.duration_minutes), last, window_hours
    )


async def pair_conflicts(
    tx: AsyncSession,
    tutor_id: str,
    student_ids: Sequence[str],
    day_start: datetime,
    day_end: datetime,
    exclude: str | None = None,
) -> list[str]:
    """Students who already have an active session with this tutor in [day_start, day_end)."""
    query = (
        select(SessionParticipant.student_id)
        .join(SessionRow, SessionRow.id == SessionParticipant.session_id)
        .where(
            SessionRow.tutor_id == tutor_id,
            SessionRow.state.in_([s.value for s in model.ACTIVE_STATES]),
            SessionRow.starts_at >= day_start,
            SessionRow.starts_at < day_end,
            SessionParticipant.student_id.in_(list(student_ids)),
            SessionParticipant.removed.is_(False),
        )
    )
    if exclude is not None:
        query = query.where(SessionRow.id != exclude)
    return sorted(set((await tx.execute(query)).scalars()))


async def tutor_overlap(
    tx: AsyncSession, tutor_id: str, start: datetime, end: datetime, exclude: str | None = None
) -> SessionRow | None:
    """An active session of the tutor overlapping [start, end)."""
    query = select(SessionRow).where(
        SessionRow.tutor_id == tutor_id,
        SessionRow.state.in_([s.value for s in model.ACTIVE_STATES]),
        SessionRow.starts_at < end,
        SessionRow.starts_at > start - timedelta(minutes=model.MAX_MINUTES),
    )
    if exclude is not None:
        query = query.where(SessionRow.id != exclude)
    for other in (await tx.execute(query)).scalars():
        if model.overlaps(
            start, end, other.starts_at, model.ends_at(other.starts_at, other.duration_minutes)
        ):
            return other
    return None


async def lock_tutor(tx: AsyncSession, tutor_id: str) -> None:
    """Serialise one tutor's scheduling changes (PostgreSQL; SQLite serialises every writer)."""
    if tx.get_bind().dialect.name == "postgresql":
        await tx.execute(select(func.pg_advisory_xact_lock(func.hashtext("tutor:" + tutor_id))))


def transition_row(
    session_id: str,
    actor_id: str | None,
    from_state: str | None,
    to_state: str,
    at: datetime,
    detail: str | None = None,
) -> dict[str, Any]:
    """A ``session_transitions`` row: who moved the session, when, from and to what."""
    return {
        "session_id": session_id,
        "actor_id": actor_id,
        "from_state": None if from_state is None else str(from_state),
        "to_state": str(to_state),
        "detail": detail,
        "at": at,
    }


def record_transition(
    tx: AsyncSession,
    session_id: str,
    actor_id: str | None,
    from_state: str | None,
    to_state: str,
    at: datetime,
    detail: str | None = None,
) -> None:
    tx.add(
        SessionTransition(**transition_row(session_id, actor_id, from_state, to_state, at, detail))
    )


async def transitions(tx: AsyncSession, session_id: str) -> list[SessionTransition]:
    rows = await tx.execute(
        select(SessionTransition)
        .where(SessionTransition.session_id == session_id)
        .order_by(SessionTransition.at, SessionTransition.id)
    )
    return list(rows.scalars())


async def invoices(tx: AsyncSession, session_id: str) -> list[Invoice]:
    rows = await tx.execute(
        select(Invoice).where(Invoice.session_id == session_id).order_by(Invoice.student_id)
    )
    return list(rows.scalars())


async def reviews(tx: AsyncSession, session_id: str) -> list[Review]:
    rows = await tx.execute(
        select(Review).where(Review.session_id == session_id).order_by(Review.created_at)
    )
    return list(rows.scalars())


async def state_of(tx: AsyncSession, session_id: str) -> str | None:
    found = await tx.scalar(select(SessionRow.state).where(SessionRow.id == session_id))
    return None if found is None else str(found)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def person(user_id: str | None, known: dict[str, str]) -> dict[str, Any] | None:
    if user_id is None:
        return None
    return {"id": user_id, "name": known.get(user_id, user_id)}


__all__ = ["Loaded", "Profile", "Relation", "load", "zone"]
