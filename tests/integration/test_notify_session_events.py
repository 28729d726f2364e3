"""The sessions service's events turned into notifications, read from the real schedule tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from classroom.db.engine import Database
from classroom.db.tables import (
    ParentLink,
    Review,
    SessionParticipant,
    User,
    utcnow,
)
from classroom.db.tables import Session as SessionRow
from classroom.notify.notifier import Notifier
from classroom.notify.session_events import SessionEventNotifications
from tests.conftest import make_settings
from tests.integration.test_notify_receivers import outbox_rows


@dataclass(frozen=True)
class Event:
    """The shape of classroom.sessions.events.SessionEvent."""

    kind: str
    session_id: str
    actor_id: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


async def seed(db: Database, starts_at: datetime) -> None:
    async with db.transaction() as tx:
        for user_id, role, name in (
            ("tutor-1", "tutor", "Tina Tutor"),
            ("student-1", "student", "Sara Student"),
            ("parent-1", "parent", "Paula Parent"),
        ):
            tx.add(User(id=user_id, role=role, name=name, email=f"{user_id}@example.test"))
        tx.add(ParentLink(parent_id="parent-1", student_id="student-1"))
        tx.add(
            SessionRow(
                id="s-1",
                tutor_id="tutor-1",
                starts_at=starts_at,
                duration_minutes=60,
                topic="Algebra",
                notes="private: do not share",
                state="requested",
            )
        )
        await tx.flush()
        tx.add(SessionParticipant(session_id="s-1", student_id="student-1"))


def topics(rows: list[Any], status: str | None = None) -> Counter[tuple[str, str | None]]:
    return Counter((r.topic, r.recipient) for r in rows if status is None or r.status == status)


async def test_a_session_from_request_to_review(db: Database, database_url: str) -> None:
    starts_at = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    await seed(db, starts_at)
    settings = make_settings(
        database_url, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s"
    )
    listener = SessionEventNotifications(Notifier(settings))
    now = utcnow()

    async def record(kind: str, **data: Any) -> None:
        async with db.transaction() as tx:
            await listener.record(tx, Event(kind, "s-1", "tutor-1", now, data))

    await record("session.requested", series_id=None)
    await record("session.accepted", student_id="student-1", all_accepted=True)
    rows = await outbox_rows(db)
    assert topics(rows) == Counter(
        {
            ("session.requested", "tutor-1@example.test"): 1,
            ("session.requested", "student-1@example.test"): 1,
            ("session.requested", "parent-1@example.test"): 1,
            ("session.accepted", "tutor-1@example.test"): 1,
            ("reminder", "tutor-1@example.test"): 2,
            ("reminder", "student-1@example.test"): 2,
            ("reminder", "parent-1@example.test"): 2,
        }
    )

    async with db.transaction() as tx:
        await tx.execute(
            update(SessionRow)
            .where(SessionRow.id == "s-1")
            .values(starts_at=starts_at + timedelta(days=1), state="accepted")
        )
    await record("session.rescheduled", from_starts_at=starts_at.isoformat())
    rows = await outbox_rows(db)
    assert sum(1 for r in rows if r.topic == "reminder" and r.status == "cancelled") == 6
    pending_reminders = [r for r in rows if r.topic == "reminder" and r.status == "pending"]
    assert len(pending_reminders) == 6  # already accepted: reminders at the new time
    assert min(r.deliver_after for r in pending_reminders) == starts_at

    await record("session.started")
    async with db.transaction() as tx:
        await tx.execute(
            update(SessionRow).where(SessionRow.id == "s-1").values(recap="Covered it all " * 12)
        )
        tx.add(
            Review(
                session_id="s-1",
                student_id="student-1",
                tutor_id="tutor-1",
                rating=4,
                text="Helpful",
            )
        )
    await record(
        "session.completed",
        minutes=60,
        needs_review=False,
        invoices=[{"id": "inv-1", "student_id": "student-1", "amount_cents": 3000}],
    )
    await record("review.created", student_id="student-1", rating=4)
    rows = await outbox_rows(db)
    assert topics(rows, "pending")[("session.completed", "student-1@example.test")] == 1
    assert topics(rows, "pending")[("session.completed", "parent-1@example.test")] == 1
    assert topics(rows, "pending")[("review.received", "tutor-1@example.test")] == 1
    assert all(r.status == "cancelled" for r in rows if r.topic == "reminder")
    webhooks = [(r.sequence, r.topic) for r in rows if r.kind == "webhook"]
    assert sorted(webhooks) == [(1, "session.started"), (2, "session.completed")]
    [completed] = [r for r in rows if r.topic == "session.completed" and r.kind == "webhook"]
    assert completed.payload["data"]["amounts"][0]["amount_cents"] == 3000
    assert "Covered it all" in next(
        r.payload["text"]
        for r in rows
        if r.recipient == "parent-1@example.test" and r.topic == "session.completed"
    )
    assert not any("do not share" in str(r.payload) for r in rows)


async def test_cancel_decline_and_missed(db: Database, database_url: str) -> None:
    await seed(db, (utcnow() + timedelta(days=3)).replace(microsecond=0))
    settings = make_settings(
        database_url, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s"
    )
    listener = SessionEventNotifications(Notifier(settings))
    now = utcnow()
    async with db.transaction() as tx:
        await listener.record(
            tx,
            Event(
                "session.declined",
                "s-1",
                "student-1",
                now,
                {"student_id": "student-1", "session_declined": True},
            ),
        )
        await listener.record(
            tx,
            Event(
                "session.cancelled",
                "s-1",
                "tutor-1",
                now,
                {"reason": "Flu", "late": True, "by": "tutor-1"},
            ),
        )
        await listener.record(
            tx, Event("session.missed", "s-1", None, now, {"reason": "not_accepted"})
        )
        await listener.record(tx, Event("session.unknown", "s-1", None, now))
        await listener.record(tx, Event("session.requested", "no-such-session", None, now))
    rows = await outbox_rows(db)
    assert topics(rows) == Counter(
        {
            ("session.declined", "tutor-1@example.test"): 1,
            ("session.cancelled", "tutor-1@example.test"): 1,
            ("session.cancelled", "student-1@example.test"): 1,
            ("session.cancelled", "parent-1@example.test"): 1,
            ("session.cancelled", None): 1,
            ("session.missed", None): 1,
        }
    )
    cancelled = next(r for r in rows if r.recipient == "student-1@example.test")
    assert "cancelled by Tina Tutor" in cancelled.payload["text"]
    assert "Flu" in cancelled.payload["text"] and "Late cancellation" in cancelled.payload["text"]
