"""The attendance record: every join and leave of a classroom, with the reason for each leave."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.engine import Database
from classroom.db.tables import Attendance
from classroom.rooms.model import Change


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
    def __init__(self, db: Database, events: AttendanceEvents | None = None) -> None:
        self._db = db
        self._events = events

    async def record(self, session_id: str, change: Change, at: datetime) -> None:
        """Store the joins and leaves of one presence change, in one transaction."""
        if not change.joined and not change.left:
            return
        async with self._db.transaction() as tx:
            for member, reason in change.left:
                open_stay = (
                    select(Attendance.id)
                    .where(
                        Attendance.session_id == session_id,
                        Attendance.user_id == member.user_id,
                        Attendance.left_at.is_(None),
                    )
                    .scalar_subquery()
                )
                await tx.execute(
                    update(Attendance)
                    .where(Attendance.id.in_(open_stay))
                    .values(left_at=at, leave_reason=reason)
                )
                if self._events is not None:
                    await self._events.participant_left(
                        tx, session_id, member.user_id, member.role, reason, at
                    )
            for member in change.joined:
                tx.add(
                    Attendance(
                        session_id=session_id,
                        user_id=member.user_id,
                        role=member.role,
                        joined_at=at,
                    )
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
