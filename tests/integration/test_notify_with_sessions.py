"""The real sessions service with the notifications listener: book, accept, reschedule, cancel,
and what reaches the real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from classroom.db.engine import Database
from classroom.notify.mail import SmtpTransport
from classroom.notify.notifier import Notifier
from classroom.notify.session_events import SessionEventNotifications
from classroom.sessions.service import NewSession, SessionService
from classroom.users.directory import UserDirectory
from tests.conftest import People, make_settings
from tests.integration.sessions_support import Clock, FakeGate
from tests.integration.test_notify_emails import calendar, subject
from tests.integration.test_notify_receivers import SmtpSink, drain, make_worker, running_smtp

START = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with running_smtp() as sink:
        yield sink


async def test_booking_to_cancellation_reaches_everyone_once(
    db: Database, database_url: str, people: People, smtp: SmtpSink
) -> None:
    users = UserDirectory(db)
    for who in (people.tutor, people.student, people.parent):
        await users.remember(who)
    settings = make_settings(database_url)
    listener = SessionEventNotifications(Notifier(settings))
    service = SessionService(db, settings, FakeGate(), Clock(START - timedelta(days=3)), listener)

    view = await service.create_sessions(
        people.tutor,
        NewSession(
            student_ids=[people.student.user_id],
            starts_at=START,
            duration_minutes=60,
            topic="Quadratics",
            notes="PRIVATE tutor note: anxious about exams",
        ),
    )
    session_id = view["id"]
    await service.accept(people.student, session_id)
    await service.reschedule(people.tutor, session_id, START + timedelta(hours=2), 60)
    await service.cancel(people.tutor, session_id, "Tutor is ill")

    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()

    to_sara = sorted(subject(m) for m in smtp.to(people.student.email or ""))
    to_paula = sorted(subject(m) for m in smtp.to(people.parent.email or ""))
    to_tina = sorted(subject(m) for m in smtp.to(people.tutor.email or ""))
    assert (len(to_sara), len(to_paula), len(to_tina)) == (3, 3, 4)
    assert any(s.startswith("New tutoring session request from Tina Tutor") for s in to_sara)
    assert any(s.startswith("Session moved to ") for s in to_sara)
    assert any(s.startswith("Session cancelled: ") for s in to_sara)
    assert any(s.startswith("New tutoring session request for Sara Student") for s in to_paula)
    assert any(s.startswith("Session cancelled: ") for s in to_paula)
    assert any(s.startswith("Sara Student accepted your session") for s in to_tina)
    # reminders were scheduled on acceptance and withdrawn by the reschedule: none went out
    assert not any(s.startswith("Reminder") for s in to_sara + to_paula + to_tina)

    invites = sorted(
        (calendar(m) for m in smtp.to(people.student.email or "")),
        key=lambda ics: int(ics["SEQUENCE"]),
    )
    assert {ics["UID"] for ics in invites} == {f"{session_id}@classroom"}
    assert [(ics["METHOD"], ics["SEQUENCE"]) for ics in invites] == [
        ("REQUEST", "0"),
        ("REQUEST", "1"),
        ("CANCEL", "2"),
    ]
    everything = "\n".join(m.as_string() for m in smtp.messages)
    assert "PRIVATE" not in everything and "anxious" not in everything
