"""The attendance record: every join and leave of a classroom, with the reason for each leave.

Records are committed in groups (``classroom.db.groups.GroupCommit``, shared in the application
with the sessions' starts): a change waits for the transaction that holds it, and the changes that
arrive while one transaction runs (other classrooms, at the start of the hour) go together in the
next. Each caller still returns only after its own change is committed (the room service
announces the change first, and holds the classroom's lock until the commit); a group that
fails is retried one change per transaction, so one bad change fails alone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.engine import Database, flush_inserts, insert_later
from classroom.db.groups import GroupCommit, Transactions
from classroom.db.tables import Attendance, table
from classroom.rooms.model import Change

log = logging.getLogger(__name__)
GROUP_MAX = 200  # changes per transaction

_STAYS = table(Attendance)
# A leave closes the user's open stay in the session (built once: a leave is on the path of the
# presence event everyone else waits for).
_CLOSE_STAY = (
    update(_STAYS)
    .where(
        _STAYS.c.session_id == bindparam("s"),
        _STAYS.c.user_id == bindparam("u"),
        _STAYS.c.left_at.is_(None),
    )
    .values(left_at=bindparam("at"), leave_reason=bindparam("reason"))
)


class AttendanceEvents(Protocol):
    """Who is told of joins and leaves in the same transaction (the webhook outbox)."""

    async def participant_joined(
        self, tx: AsyncSession, session_id: str, user_id: str, role: str, at: datetime | None = None
    ) -> bool: ...

    async def participant_left(
        self,
        tx: AsyncSession,
        session_id: str,
        user_id: str,
        role: str,
        reason: str,
        at: datetime | None = None,
    ) -> bool: ...


class AttendanceLog:
    def __init__(
        self,
        db: Database | Transactions,
        events: AttendanceEvents | None = None,
        *,
        groups: GroupCommit | None = None,
    ) -> None:
        self._db = db
        self._events = events
        self._groups = groups or GroupCommit(db, GROUP_MAX, name="attendance")

    async def record(self, session_id: str, change: Change, at: datetime) -> None:
        """Store the joins and leaves of one presence change; returns once they are committed
        (in a transaction shared with the changes of other classrooms waiting at the same time)."""
        if not change.joined and not change.left:
            return

        async def work(tx: AsyncSession) -> None:
            await self._write(tx, session_id, change, at)

        await self._groups.run(work)

    async def _write(self, tx: AsyncSession, session_id: str, change: Change, at: datetime) -> None:
        if change.left:
            await flush_inserts(tx)  # a stay inserted earlier in this transaction is closed too
        for member, reason in change.left:
            await tx.execute(
                _CLOSE_STAY,
                {"s": session_id, "u": member.user_id, "at": at, "reason": reason},
            )
            if self._events is not None:
                await self._events.participant_left(
                    tx, session_id, member.user_id, member.role, reason, at
                )
        for member in change.joined:
            insert_later(
                tx,
                _STAYS,
                {
                    "session_id": session_id,
                    "user_id": member.user_id,
                    "role": member.role,
                    "joined_at": at,
                    "left_at": None,
                    "leave_reason": None,
                },
            )
            if self._events is not None:
                await self._events.participant_joined(
                    tx, session_id, member.user_id, member.role, at
                )

    async def close_open_stays(self, session_id: str, at: datetime, reason: str) -> None:
        """Close stays left open (a process died, a classroom closed while nobody was tracked)."""
        async with self._db.transaction() as tx:
            await tx.execute(
                update(Attendance)
                .where(Attendance.session_id == session_id, Attendance.left_at.is_(None))
                .values(left_at=at, leave_reason=reason)
            )
