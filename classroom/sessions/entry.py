"""What a join of the online classroom reads and writes, for many joins at once.

At the start of the hour every tutor and student of hundreds of lessons presses *Join* within
seconds. Each join needs the session, its students, their names and the classroom's last leave;
``load_entries`` reads those for every session asked for at the same time with two statements
built once (``classroom.db.batch.BatchLoader`` groups the callers): the sessions with the names of
their tutor, completer and canceller and their last stay's end, then their students with names.
A statement costs SQLAlchemy about 0.3 ms of CPU before a row is read, and the reads of the start
of the hour are many small batches.
The first entry of each accepted session starts it: ``start_sessions`` starts every session
whose first entry waits at the same time with one conditional update, in the transaction the
attendance records of the moment share (``Database.groups``); the entries of the sessions it
started answer from their read, updated with the start, rather than reading them again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from classroom.auth import Identity
from classroom.db.engine import Database, insert_later
from classroom.db.tables import Session as SessionRow
from classroom.db.tables import SessionParticipant, SessionTransition, User, table
from classroom.sessions import model, store
from classroom.sessions.events import SessionEvent, SessionEvents

log = logging.getLogger("classroom.sessions")
_TRANSITIONS = table(SessionTransition)

_Tutor, _Completer, _Canceller, _Student = (aliased(User) for _ in range(4))
# the sessions, the names of the people named on them, their last stay's end
_SESSIONS = (
    select(SessionRow, store.LAST_STAY_END, _Tutor.name, _Completer.name, _Canceller.name)
    .outerjoin(_Tutor, _Tutor.id == SessionRow.tutor_id)
    .outerjoin(_Completer, _Completer.id == SessionRow.completed_by)
    .outerjoin(_Canceller, _Canceller.id == SessionRow.cancelled_by)
    .where(SessionRow.id.in_(bindparam("ids", expanding=True)))
)
# their students with their names (store.participants_of and store.names)
_PARTICIPANTS = (
    select(SessionParticipant, _Student.name)
    .outerjoin(_Student, _Student.id == SessionParticipant.student_id)
    .where(SessionParticipant.session_id.in_(bindparam("ids", expanding=True)))
    .order_by(SessionParticipant.student_id)
)


@dataclass(frozen=True, slots=True)
class Entry:
    """A session as a join sees it (the same for every caller; ``loaded`` adds the caller)."""

    row: SessionRow
    participants: list[SessionParticipant]
    names: dict[str, str]
    last_leave: datetime | None  # the latest end of a stay in its classroom
    # the summary its joins answer with, as every relation sees it, by (state, classroom open):
    # rendered once for the joins that share the entry (``views.shared_summary``)
    views: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict, compare=False)

    def loaded(self, identity: Identity) -> store.Loaded | None:
        """The session as ``identity`` sees it, None when they may not (a parent's view needs
        their linked students: not a join's business, read elsewhere)."""
        relation = store.relation_of(identity, self.row, self.participants, frozenset())
        if relation is None:
            return None
        return store.Loaded(self.row, self.participants, relation, identity.user_id)

    def started(self, at: datetime) -> None:
        """The start at ``at`` committed (``start_sessions`` moved the session from accepted to
        in progress): the entry, shared by the joins that read it together, now shows it, as a
        read after the start would (no second read)."""
        row = self.row
        if row.state == model.State.ACCEPTED.value:
            row.state, row.started_at, row.updated_at = model.State.IN_PROGRESS.value, at, at


def valid_id(session_id: str) -> bool:
    return bool(session_id) and len(session_id) <= 36


async def load_entries(db: Database, session_ids: Sequence[str]) -> dict[str, Entry]:
    ids = [i for i in session_ids if valid_id(i)]
    if not ids:
        return {}
    async with db.reader() as tx:
        rows = (await tx.execute(_SESSIONS, {"ids": ids})).all()
        participants: dict[str, list[SessionParticipant]] = {row.id: [] for row, *_ in rows}
        students: dict[str, str] = {}
        if participants:
            found = list(participants)
            for p, name in await tx.execute(_PARTICIPANTS, {"ids": found}):
                participants[p.session_id].append(p)
                if name is not None:
                    students[p.student_id] = name
    entries = {}
    for row, last_stay_end, tutor, completer, canceller in rows:
        mine = participants[row.id]
        known = {p.student_id: students[p.student_id] for p in mine if p.student_id in students}
        for user_id, name in (
            (row.tutor_id, tutor),
            (row.completed_by, completer),
            (row.cancelled_by, canceller),
        ):
            if user_id is not None and name is not None:
                known[user_id] = name
        entries[row.id] = Entry(row, mine, known, last_stay_end)
    return entries


async def start_sessions(
    db: Database, events: SessionEvents, starts: Sequence[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], datetime]:
    """Start the accepted sessions among ``starts`` ((session id, who entered) pairs): one
    conditional update for all, then each started session's transition (by the first of its
    entries here) and ``session.started`` event, in one transaction shared with the other small
    writes of the moment. For each entry whose session this update started (whichever of its
    entries here came first), the time it started; the others are left out, someone else moved
    their session first (started, cancelled or moved it): their callers read it again."""
    model.check_transition(model.State.ACCEPTED, model.State.IN_PROGRESS)
    ids = sorted({session_id for session_id, _ in starts})

    async def work(tx: AsyncSession) -> dict[str, str]:
        result = await tx.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(ids), SessionRow.state == model.State.ACCEPTED.value)
            .values(state=model.State.IN_PROGRESS.value, started_at=now, updated_at=now)
            .returning(SessionRow.id)
            .execution_options(synchronize_session=False)
        )
        started = set(result.scalars())
        first: dict[str, str] = {}
        for session_id, actor_id in starts:
            if session_id in started and session_id not in first:
                first[session_id] = actor_id
        for session_id, actor_id in first.items():
            insert_later(  # one statement for the group's transitions, not one per session
                tx,
                _TRANSITIONS,
                store.transition_row(
                    session_id, actor_id, model.State.ACCEPTED, model.State.IN_PROGRESS, now
                ),
            )
            await events.record(tx, SessionEvent("session.started", session_id, actor_id, now))
        return first

    first = await db.groups.run(work)
    for session_id, actor_id in first.items():
        log.info("started session=%s by=%s", session_id, actor_id)
    return {(s, a): now for s, a in starts if s in first}
