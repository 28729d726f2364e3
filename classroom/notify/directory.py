"""Read-only views of the schedule for notifications: a session as ``SessionInfo``, and the
sessions a user's calendar feed shows. Reads ``sessions``, ``session_participants``,
``parent_links`` and ``users``; never writes them, never reads the tutor's notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from classroom.db.tables import (
    OutboxCounter,
    OutboxMessage,
    ParentLink,
    Review,
    SessionParticipant,
    TutorProfile,
    User,
)
from classroom.db.tables import Session as SessionRow
from classroom.notify.model import Person, SessionInfo

_COLUMNS = (
    SessionRow.id,
    SessionRow.tutor_id,
    SessionRow.starts_at,
    SessionRow.duration_minutes,
    SessionRow.topic,
    SessionRow.mode,
    SessionRow.state,
)


async def _people(tx: AsyncSession, ids: set[str]) -> dict[str, tuple[str, str | None]]:
    if not ids:
        return {}
    rows = await tx.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {row.id: (row.name, row.email) for row in rows}


async def _timezones(tx: AsyncSession, tutor_ids: set[str]) -> dict[str, str]:
    """Tutors' profile timezones (the only timezone the server knows of anyone)."""
    if not tutor_ids:
        return {}
    rows = await tx.execute(
        select(TutorProfile.tutor_id, TutorProfile.timezone).where(
            TutorProfile.tutor_id.in_(tutor_ids)
        )
    )
    return {tutor_id: zone for tutor_id, zone in rows if zone}


def _assemble(
    sessions: Sequence[Any],
    students_of: dict[str, list[str]],
    links: Sequence[tuple[str, str]],
    people: dict[str, tuple[str, str | None]],
    zones: dict[str, str],
) -> list[SessionInfo]:
    """``SessionInfo`` of each session row (id, tutor_id, starts_at, duration_minutes, topic,
    mode, state) from its students, the parent links of those students, the people's names and
    emails, and the tutors' timezones."""

    def person(user_id: str, role: str, children: tuple[str, ...] = ()) -> Person:
        name, email = people.get(user_id, (user_id, None))
        timezone = zones.get(user_id) if role == "tutor" else None
        return Person(user_id, name, email, role, children, timezone)

    infos: list[SessionInfo] = []
    for row in sessions:
        students = students_of.get(row.id, [])
        parents: dict[str, list[str]] = {}
        for parent_id, student_id in links:
            if student_id in students:
                parents.setdefault(parent_id, []).append(student_id)
        infos.append(
            SessionInfo(
                id=row.id,
                tutor=person(row.tutor_id, "tutor"),
                students=tuple(person(s, "student") for s in students),
                parents=tuple(
                    person(p, "parent", tuple(sorted(children)))
                    for p, children in sorted(parents.items())
                ),
                starts_at=row.starts_at,
                duration_minutes=row.duration_minutes,
                topic=row.topic,
                mode=row.mode,
                state=row.state,
            )
        )
    return infos


async def _build(tx: AsyncSession, query: Select[*tuple[Any, ...]]) -> list[SessionInfo]:
    sessions = (await tx.execute(query)).all()
    if not sessions:
        return []
    ids = [row.id for row in sessions]
    participants = (
        await tx.execute(
            select(SessionParticipant.session_id, SessionParticipant.student_id)
            .where(SessionParticipant.session_id.in_(ids), SessionParticipant.removed.is_(False))
            .order_by(SessionParticipant.session_id, SessionParticipant.student_id)
        )
    ).all()
    students_of: dict[str, list[str]] = {}
    for session_id, student_id in participants:
        students_of.setdefault(session_id, []).append(student_id)
    all_students = {student for _, student in participants}
    links = (
        [
            (parent_id, student_id)
            for parent_id, student_id in await tx.execute(
                select(ParentLink.parent_id, ParentLink.student_id).where(
                    ParentLink.student_id.in_(all_students)
                )
            )
        ]
        if all_students
        else []
    )
    ids_needed = all_students | {row.tutor_id for row in sessions} | {p for p, _ in links}
    people = await _people(tx, ids_needed)
    zones = await _timezones(tx, {row.tutor_id for row in sessions})
    return _assemble(sessions, students_of, links, people, zones)


_TUTOR, _STUDENT, _PARENT = aliased(User), aliased(User), aliased(User)
_ONE = (
    select(
        *_COLUMNS,
        TutorProfile.timezone.label("timezone"),
        _TUTOR.name.label("tutor_name"),
        _TUTOR.email.label("tutor_email"),
        SessionParticipant.student_id.label("student_id"),
        _STUDENT.name.label("student_name"),
        _STUDENT.email.label("student_email"),
        ParentLink.parent_id.label("parent_id"),
        _PARENT.name.label("parent_name"),
        _PARENT.email.label("parent_email"),
    )
    .select_from(SessionRow)
    .outerjoin(TutorProfile, TutorProfile.tutor_id == SessionRow.tutor_id)
    .outerjoin(_TUTOR, _TUTOR.id == SessionRow.tutor_id)
    .outerjoin(
        SessionParticipant,
        and_(
            SessionParticipant.session_id == SessionRow.id,
            SessionParticipant.removed.is_(False),
        ),
    )
    .outerjoin(_STUDENT, _STUDENT.id == SessionParticipant.student_id)
    .outerjoin(ParentLink, ParentLink.student_id == SessionParticipant.student_id)
    .outerjoin(_PARENT, _PARENT.id == ParentLink.parent_id)
    .where(SessionRow.id == bindparam("session_id"))
    .order_by(SessionParticipant.student_id, ParentLink.parent_id)
)
_ENDING = _ONE.add_columns(
    exists()
    .where(
        OutboxMessage.session_id == SessionRow.id,
        OutboxMessage.topic == "reminder",
        OutboxMessage.status == "pending",
    )
    .label("reminders_pending")
)


async def load_session_info(tx: AsyncSession, session_id: str) -> SessionInfo | None:
    """The session with its tutor, current students and their linked parents (names, emails).

    One statement (this runs inside the transactions that change a session): one row per
    student and parent of that student."""
    rows = (await tx.execute(_ONE, {"session_id": session_id})).all()
    return _one(rows)


async def load_ending_session(tx: AsyncSession, session_id: str) -> tuple[SessionInfo, bool] | None:
    """``load_session_info``, and whether reminders of the session are still pending (the same
    statement)."""
    rows = (await tx.execute(_ENDING, {"session_id": session_id})).all()
    info = _one(rows)
    return None if info is None else (info, bool(rows[0].reminders_pending))


def _one(rows: Sequence[Any]) -> SessionInfo | None:
    if not rows:
        return None
    session = rows[0]
    zones = {session.tutor_id: session.timezone} if session.timezone else {}
    people: dict[str, tuple[str, str | None]] = {}
    students: list[str] = []
    links: list[tuple[str, str]] = []
    for row in rows:
        if row.tutor_name is not None:
            people[session.tutor_id] = (row.tutor_name, row.tutor_email)
        student_id = row.student_id
        if student_id is None:
            continue
        if not students or students[-1] != student_id:
            students.append(student_id)
        if row.student_name is not None:
            people[student_id] = (row.student_name, row.student_email)
        if row.parent_id is not None:
            links.append((row.parent_id, student_id))
            if row.parent_name is not None:
                people[row.parent_id] = (row.parent_name, row.parent_email)
    return _assemble([session], {session.id: students}, links, people, zones)[0]


async def sessions_for(
    tx: AsyncSession,
    user_id: str,
    role: str,
    *,
    since: datetime,
    children: Sequence[str] = (),
    limit: int = 500,
) -> list[SessionInfo]:
    """The sessions on this user's calendar from ``since`` on: taught, attended, or (parents)
    attended by a linked student."""
    query = select(*_COLUMNS).where(SessionRow.starts_at >= since)
    if role == "tutor":
        query = query.where(SessionRow.tutor_id == user_id)
    else:
        if role == "parent":
            linked = set(children) | set(
                (
                    await tx.execute(
                        select(ParentLink.student_id).where(ParentLink.parent_id == user_id)
                    )
                ).scalars()
            )
        elif role == "student":
            linked = {user_id}
        else:
            return []
        attended = select(SessionParticipant.session_id).where(
            SessionParticipant.student_id.in_(linked), SessionParticipant.removed.is_(False)
        )
        query = query.where(SessionRow.id.in_(attended))
    return await _build(tx, query.order_by(SessionRow.starts_at).limit(limit))


async def calendar_sequences(tx: AsyncSession, session_ids: Sequence[str]) -> dict[str, int]:
    if not session_ids:
        return {}
    rows = await tx.execute(
        select(OutboxCounter.session_id, OutboxCounter.calendar_sequence).where(
            OutboxCounter.session_id.in_(session_ids)
        )
    )
    return {session_id: sequence for session_id, sequence in rows}


async def load_person(tx: AsyncSession, user_id: str, role: str) -> Person:
    """A user as the users table knows them (their id as name when never seen)."""
    name, email = (await _people(tx, {user_id})).get(user_id, (user_id, None))
    timezone = (await _timezones(tx, {user_id})).get(user_id) if role == "tutor" else None
    return Person(user_id, name, email, role, (), timezone)


async def load_parents(tx: AsyncSession, student_id: str) -> tuple[Person, ...]:
    """The parents linked to ``student_id``."""
    ids = set(
        (
            await tx.execute(
                select(ParentLink.parent_id).where(ParentLink.student_id == student_id)
            )
        ).scalars()
    )
    people = await _people(tx, ids)
    return tuple(
        Person(p, *people.get(p, (p, None)), role="parent", children=(student_id,))
        for p in sorted(ids)
    )


async def load_recap(tx: AsyncSession, session_id: str) -> str | None:
    """The recap (shared with students and parents; never the private notes)."""
    found = await tx.execute(select(SessionRow.recap).where(SessionRow.id == session_id))
    return found.scalar_one_or_none()


async def load_review(tx: AsyncSession, session_id: str, student_id: str) -> tuple[int, str | None]:
    found = (
        await tx.execute(
            select(Review.rating, Review.text).where(
                Review.session_id == session_id, Review.student_id == student_id
            )
        )
    ).one()
    return found[0], found[1]
