"""Each use case's emails, through the outbox and the worker, into a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, ParentLink, SessionParticipant, User, utcnow
from classroom.db.tables import Session as SessionRow
from classroom.notify.directory import load_session_info
from classroom.notify.ical import unfold
from classroom.notify.mail import FolderTransport, SmtpTransport
from classroom.notify.model import InvoiceInfo, SessionInfo
from classroom.notify.notifier import Notifier
from tests.conftest import make_settings
from tests.integration.test_notify_receivers import (
    PARENT,
    STUDENT,
    STUDENT2,
    TUTOR,
    SmtpSink,
    a_session,
    drain,
    make_worker,
    outbox_rows,
    running_smtp,
)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with running_smtp() as sink:
        yield sink


NOTES = "PRIVATE: Sara struggles with confidence, talk to her mum"


def notifier(database_url: str, **overrides: object) -> Notifier:
    return Notifier(make_settings(database_url, **overrides))


def subject(message: EmailMessage) -> str:
    """The Subject as a reader sees it (a folded header unfolds with leading blanks)."""
    return " ".join(str(message["Subject"]).split())


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def body_html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def calendar(message: EmailMessage) -> dict[str, str]:
    """The content lines of the .ics attachment as NAME -> value (first occurrence)."""
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    text = raw.decode()
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    lines: dict[str, str] = {}
    for line in unfold(text):
        name, _, value = line.partition(":")
        lines.setdefault(name.split(";")[0], value)
    return lines


def everything(sink: SmtpSink) -> str:
    return "\n".join(m.as_string() for m in sink.messages)


async def test_requested_goes_to_students_parents_and_tutor_with_invitations(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    session = a_session()
    async with db.transaction() as tx:
        written = await notifier(database_url).session_requested(tx, session)
    assert written == 4
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        assert await drain(worker) == 4
    finally:
        await worker.close()

    recipients = sorted(addr for e in smtp.envelopes for addr in e.rcpt_tos)
    assert recipients == sorted([STUDENT.email, STUDENT2.email, PARENT.email, TUTOR.email])
    [to_sara] = smtp.to("sara@example.test")
    assert subject(to_sara) == "New tutoring session request from Tina Tutor"
    assert "Please accept or decline" in body_text(to_sara)
    assert "Algebra: quadratic equations" in body_text(to_sara)
    [to_paula] = smtp.to("paula@example.test")
    assert subject(to_paula) == "New tutoring session request for Sara Student"
    [to_tina] = smtp.to("tina@example.test")
    assert subject(to_tina).startswith("Session requested: ")

    for message in smtp.messages:
        ics = calendar(message)
        assert ics["METHOD"] == "REQUEST"
        assert ics["UID"] == "s-1@classroom"
        assert ics["SEQUENCE"] == "0"
        assert ics["DTSTART"] == session.starts_at.strftime("%Y%m%dT%H%M%SZ")
        assert message["Message-ID"].endswith("@classroom>")

    # the same use case again (a retried request) writes nothing new
    async with db.transaction() as tx:
        assert await notifier(database_url).session_requested(tx, session) == 0


async def test_user_values_are_escaped_in_html_and_plain_in_text(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    evil = '<script>alert("x")</script> & co'
    session = a_session(topic=evil, students=(STUDENT,), parents=())
    async with db.transaction() as tx:
        await notifier(database_url).session_cancelled(
            tx, session, reason="Sick <b>kid</b>\nsorry", late=True, by=TUTOR
        )
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()
    [message] = smtp.to("sara@example.test")
    html = body_html(message)
    assert "<script>" not in html and "<b>kid</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    assert "Sick &lt;b&gt;kid&lt;/b&gt;<br>" in html
    text = body_text(message)
    assert evil in text and "Sick <b>kid</b>\nsorry" in text
    assert "Late cancellation" in text


async def test_reschedule_updates_and_cancel_cancels_the_same_event(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    notify = notifier(database_url)
    session = a_session(students=(STUDENT,))
    moved = a_session(students=(STUDENT,), starts_at=session.starts_at + timedelta(days=1))
    async with db.transaction() as tx:
        await notify.session_requested(tx, session)
    async with db.transaction() as tx:
        await notify.session_rescheduled(tx, moved, session.starts_at)
    async with db.transaction() as tx:
        await notify.session_cancelled(tx, moved, reason="Exam week", late=False, by=STUDENT)
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()

    for address in (STUDENT.email, PARENT.email, TUTOR.email):
        assert address is not None
        messages = smtp.to(address)
        assert len(messages) == 3
        # emails are not ordered among themselves; calendars order updates by SEQUENCE
        invites = sorted((calendar(m) for m in messages), key=lambda ics: int(ics["SEQUENCE"]))
        assert {ics["UID"] for ics in invites} == {"s-1@classroom"}
        assert [(ics["METHOD"], ics["SEQUENCE"]) for ics in invites] == [
            ("REQUEST", "0"),
            ("REQUEST", "1"),
            ("CANCEL", "2"),
        ]
        assert invites[1]["DTSTART"] == moved.starts_at.strftime("%Y%m%dT%H%M%SZ")
        assert invites[2]["STATUS"] == "CANCELLED"
    [cancel_to_sara] = [m for m in smtp.to("sara@example.test") if "cancelled" in subject(m)]
    text = body_text(cancel_to_sara)
    assert "cancelled by Sara Student" in text and "Exam week" in text
    assert "Late cancellation" not in text
    [moved_to_sara] = [m for m in smtp.to("sara@example.test") if "moved" in subject(m)]
    assert "Please accept the new time" in body_text(moved_to_sara)


async def test_responses_go_to_the_tutor(db: Database, database_url: str, smtp: SmtpSink) -> None:
    session = a_session()
    async with db.transaction() as tx:
        await notifier(database_url).session_responded(tx, session, STUDENT, accepted=True)
        await notifier(database_url).session_responded(tx, session, STUDENT2, accepted=False)
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()
    assert {addr for e in smtp.envelopes for addr in e.rcpt_tos} == {TUTOR.email}
    subjects = sorted(subject(m) for m in smtp.messages)
    assert subjects[0].startswith("Sara Student accepted your session on ")
    assert subjects[1].startswith("Sid Student declined your session on ")


async def test_completion_sends_recap_and_each_invoice_to_its_own_student_and_parent(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    session = a_session(state="completed")
    recap = "We covered the quadratic formula & completing the square. " * 4
    invoices = [
        InvoiceInfo("inv-sara", STUDENT.user_id, 60, 4500),
        InvoiceInfo("inv-sid", STUDENT2.user_id, 60, 5000),
    ]
    async with db.transaction() as tx:
        await notifier(database_url).session_completed(
            tx, session, recap=recap, minutes=60, invoices=invoices, needs_review=False
        )
    async with db.transaction() as tx:
        await notifier(database_url).review_received(
            tx, session, student=STUDENT, rating=5, text="Great <3"
        )
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()

    [to_sara] = smtp.to("sara@example.test")
    text = body_text(to_sara)
    assert recap.strip() in text and "inv-sara" in text and "45.00 USD" in text
    assert "inv-sid" not in text and "50.00" not in text
    assert "rate and review" in text
    [to_paula] = smtp.to("paula@example.test")
    assert "inv-sara" in body_text(to_paula) and "inv-sid" not in body_text(to_paula)
    [to_sid] = smtp.to("sid@example.test")
    assert "inv-sid" in body_text(to_sid) and "inv-sara" not in body_text(to_sid)
    [to_tina] = smtp.to("tina@example.test")
    assert subject(to_tina) == "New review from Sara Student: 5/5"
    assert "Great &lt;3" in body_html(to_tina)


async def test_reminders_wait_until_due_and_moving_the_session_replaces_them(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    notify = notifier(database_url, reminders_minutes=[1440, 60])
    session = a_session(students=(STUDENT,), parents=())
    async with db.transaction() as tx:
        assert await notify.schedule_reminders(tx, session) == 4  # 2 offsets x tutor, student
        assert await notify.schedule_reminders(tx, session) == 0  # idempotent

    now_worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        assert await drain(now_worker) == 0  # not due yet
    finally:
        await now_worker.close()

    moved = a_session(
        students=(STUDENT,), parents=(), starts_at=session.starts_at + timedelta(hours=5)
    )
    async with db.transaction() as tx:
        await notify.session_rescheduled(tx, moved, session.starts_at)
        await notify.schedule_reminders(tx, moved)

    rows = [r for r in await outbox_rows(db) if r.topic == "reminder"]
    assert sorted(r.status for r in rows) == ["cancelled"] * 4 + ["pending"] * 4
    assert {r.deliver_after for r in rows if r.status == "pending"} == {
        moved.starts_at - timedelta(minutes=1440),
        moved.starts_at - timedelta(minutes=60),
    }

    # a day before the new start, then an hour before: each reminder of the new time goes out
    for before in (1439, 59):
        worker = make_worker(
            db,
            mail=SmtpTransport(smtp.url),
            clock=lambda before=before: moved.starts_at - timedelta(minutes=before),
        )
        try:
            await drain(worker)
        finally:
            await worker.close()
    reminders = [m for m in smtp.messages if subject(m).startswith("Reminder")]
    to_sara = smtp.to("sara@example.test")
    assert [subject(m) for m in to_sara if subject(m).startswith("Reminder")] == [
        "Reminder: tutoring session in 24 hours",
        "Reminder: tutoring session in 1 hour",
    ]
    assert {calendar(m)["SEQUENCE"] for m in reminders} == {"1"}


async def test_a_rolled_back_change_sends_nothing(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    woken: list[bool] = []
    notify = notifier(database_url)
    notify.subscribe(lambda: woken.append(True))
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await notify.session_requested(tx, a_session())
            raise RuntimeError("the use case failed after notifying")
    assert await outbox_rows(db) == []
    assert woken == []
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        assert await drain(worker) == 0
    finally:
        await worker.close()
    assert smtp.envelopes == []

    async with db.transaction() as tx:
        await notify.session_requested(tx, a_session())
    assert woken == [True]  # exactly one wake-up per committed transaction


async def test_without_smtp_each_message_becomes_an_eml_file(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    async with db.transaction() as tx:
        await notifier(database_url).session_requested(tx, a_session())
    folder = FolderTransport(tmp_path / "outbox-mail")
    worker = make_worker(db, mail=folder)
    try:
        assert await drain(worker) == 4
    finally:
        await worker.close()
    files = sorted((tmp_path / "outbox-mail").glob("*.eml"))
    assert len(files) == 4
    assert not list((tmp_path / "outbox-mail").glob("*.partial"))
    assert any(b"To: Sara Student <sara@example.test>" in f.read_bytes() for f in files)
    assert {r.status for r in await outbox_rows(db)} == {"sent"}


async def test_people_without_email_are_skipped_and_the_rest_still_sent(
    db: Database, database_url: str
) -> None:
    no_mail = STUDENT2.__class__("student-3", "No Mail", None, "student")
    session = a_session(students=(STUDENT, no_mail), parents=())
    async with db.transaction() as tx:
        assert await notifier(database_url).session_requested(tx, session) == 2


async def _seed_schedule(db: Database) -> None:
    async with db.transaction() as tx:
        for person in (TUTOR, STUDENT, STUDENT2, PARENT):
            tx.add(User(id=person.user_id, role=person.role, name=person.name, email=person.email))
        tx.add(ParentLink(parent_id=PARENT.user_id, student_id=STUDENT.user_id))
        tx.add(
            SessionRow(
                id="s-db",
                tutor_id=TUTOR.user_id,
                starts_at=utcnow() + timedelta(days=2),
                duration_minutes=45,
                topic="Fractions",
                notes=NOTES,
                mode="online",
                state="accepted",
            )
        )
        await tx.flush()
        tx.add(SessionParticipant(session_id="s-db", student_id=STUDENT.user_id))
        tx.add(SessionParticipant(session_id="s-db", student_id=STUDENT2.user_id, removed=True))


async def test_private_notes_never_reach_anyone(
    db: Database, database_url: str, smtp: SmtpSink
) -> None:
    await _seed_schedule(db)
    notify = notifier(database_url, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s")
    async with db.transaction() as tx:
        info = await load_session_info(tx, "s-db")
        assert isinstance(info, SessionInfo)
        assert [s.user_id for s in info.students] == [STUDENT.user_id]  # removed one left out
        assert [(p.user_id, p.children) for p in info.parents] == [("parent-1", ("student-1",))]
        assert not hasattr(info, "notes")
        await notify.session_requested(tx, info)
        await notify.schedule_reminders(tx, info)
        await notify.session_cancelled(tx, info, reason=None, late=True)
    async with db.reader() as tx:
        payloads = [str(p) for p in (await tx.execute(select(OutboxMessage.payload))).scalars()]
    assert payloads and not any("PRIVATE" in p or "confidence" in p for p in payloads)
    worker = make_worker(db, mail=SmtpTransport(smtp.url))
    try:
        await drain(worker)
    finally:
        await worker.close()
    assert smtp.messages and "confidence" not in everything(smtp)
