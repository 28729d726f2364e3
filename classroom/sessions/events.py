"""What happened to a session, told inside the transaction that made it happen.

The sessions service calls ``SessionEvents.record(tx, event)`` in the same unit of work as the
change, so a listener that writes (the notification outbox) commits or rolls back with it. The
default, ``NoEvents``, does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

EventKind = Literal[
    "session.requested",  # created (one per booking of a series); data: series_id
    "session.accepted",  # one student accepted; data: student_id, all_accepted
    "session.declined",  # one student declined; data: student_id, session_declined
    "session.withdrawn",  # one student left a group booking; data: student_id, reason, late
    "session.rescheduled",  # data: from_starts_at, to_starts_at, from_duration, to_duration
    "session.cancelled",  # data: reason, late, by
    "session.started",  # the classroom was entered for the first time
    "session.completed",  # data: minutes, recap, needs_review, invoices [{id, student_id,
    #                       amount_cents}]
    "session.missed",  # data: reason (not_accepted | logging_window_passed | *_no_show), state
    "session.no_show",  # with session.missed; data: reason, absent [user ids], fees [invoice]
    "session.participant_removed",  # data: student_id, reason
    "review.created",  # data: student_id, rating
]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    kind: EventKind
    session_id: str
    actor_id: str | None  # None: the system (the sweep)
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class SessionEvents(Protocol):
    async def record(self, tx: AsyncSession, event: SessionEvent) -> None:
        """Called inside the transaction of the change; raising rolls the change back."""


class NoEvents:
    async def record(self, tx: AsyncSession, event: SessionEvent) -> None:
        return None
