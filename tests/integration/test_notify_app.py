"""The issue's "Done when", through the real application: HTTP routes, a real Socket.IO classroom,
the outbox worker running with the app, a real SMTP server (aiosmtpd) and a real webhook
receiver on 127.0.0.1 — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, utcnow
from classroom.notify.templates import format_when
from classroom.notify.webhook import verify
from classroom.notify.wiring import OUTBOX_WORKER
from tests.conftest import AppFactory, People
from tests.integration.test_notify_emails import body_text, calendar, subject
from tests.integration.test_notify_receivers import (
    MAIL_FROM,
    SECRET,
    SmtpSink,
    WebhookReceiver,
    outbox_rows,
    running_receiver,
    running_smtp,
)
from tests.support import RECAP, Client, wait_until

NOTES = "PRIVATE tutor note: worried about the exam"
TUTOR_ZONE = "America/New_York"


# Tests list ``smtp`` and ``receiver`` before ``make_client``: the receivers then outlive the app,
# whose shutdown may still write and deliver (a participant.left when its sockets close).


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with running_smtp() as sink:
        yield sink


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as hook:
        yield hook


async def start_app(
    make_client: AppFactory, smtp: SmtpSink, receiver: WebhookReceiver, **overrides: Any
) -> TestClient[Any, Any]:
    settings: dict[str, Any] = {
        "smtp_url": smtp.url,
        "mail_from": MAIL_FROM,
        "webhook_url": receiver.url,
        "webhook_secret": SECRET,
        "outbox_poll_seconds": 0.5,
        "outbox_retry_base_seconds": 0.05,
        "outbox_retry_max_seconds": 0.5,
        "reconnect_grace": 1.0,
        **overrides,
    }
    return await make_client(**settings)


async def call(
    app: TestClient[Any, Any],
    people: People,
    method: str,
    path: str,
    who: Identity,
    body: Any = None,
    status: int = 200,
) -> Any:
    response = await app.request(method, path, json=body, headers=people.headers(who))
    data = await response.json()
    assert response.status == status, data
    return data


async def settled(db: Database, timeout: float = 20) -> list[OutboxMessage]:
    """Wait (bounded) until the outbox has nothing pending; every row then."""

    async def nothing_pending() -> bool:
        async with db.reader() as tx:
            pending = await tx.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "pending")
            )
        return not pending

    await wait_until(nothing_pending, timeout)
    return await outbox_rows(db)


def next_minute(plus: timedelta) -> datetime:
    now = utcnow()
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1) + plus


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_done_when_booking_to_completion_and_a_cancelled_booking_reach_everyone_once(
    smtp: SmtpSink,
    receiver: WebhookReceiver,
    make_client: AppFactory,
    db: Database,
    people: People,
) -> None:
    # The receiver refuses the first delivery of session.started: it is retried, and the
    # session's later events wait for it.
    receiver.status_for = lambda event, attempt: (
        503 if event["type"] == "session.started" and attempt == 1 else 200
    )
    app = await start_app(make_client, smtp, receiver)
    tutor, sara, sid, paula = people.tutor, people.student, people.student2, people.parent
    for who in (tutor, sara, sid, paula):  # the platform's tokens, first use: paula's links sara
        await call(app, people, "GET", "/api/sessions", who)
    await call(app, people, "PUT", "/api/tutors/me", tutor, {"timezone": TUTOR_ZONE})

    # Session A: booked, accepted, moved to a few minutes from now, accepted again.
    first_time = next_minute(timedelta(hours=3))
    new_time = next_minute(timedelta(minutes=2))
    body = {"student_ids": [sara.user_id], "starts_at": iso(first_time), "duration_minutes": 60}
    body |= {"topic": "Quadratics", "notes": NOTES}
    a = (await call(app, people, "POST", "/api/sessions", tutor, body, 201))["id"]
    await call(app, people, "POST", f"/api/sessions/{a}/accept", sara, {})
    moved = {"starts_at": iso(new_time)}
    await call(app, people, "POST", f"/api/sessions/{a}/reschedule", tutor, moved)
    await call(app, people, "POST", f"/api/sessions/{a}/accept", sara, {})

    # Session B, two days later with Sara and Sid: both accept (reminders scheduled), Sid
    # withdraws from the group, then the tutor cancels it.
    body = {
        "student_ids": [sara.user_id, sid.user_id],
        "starts_at": iso(first_time + timedelta(days=2)),
        "duration_minutes": 60,
        "notes": NOTES,
    }
    b = (await call(app, people, "POST", "/api/sessions", tutor, body, 201))["id"]
    await call(app, people, "POST", f"/api/sessions/{b}/accept", sara, {})
    await call(app, people, "POST", f"/api/sessions/{b}/accept", sid, {})
    await call(app, people, "POST", f"/api/sessions/{b}/cancel", sid, {"reason": "Exam clash"})
    await call(app, people, "POST", f"/api/sessions/{b}/cancel", tutor, {"reason": "Tutor is ill"})

    # Session A in the classroom: both join, both leave, then Complete Session over HTTP.
    url = str(app.make_url("/"))
    tutor_call = await Client("tutor").connect(url, people.token(tutor))
    sara_call = await Client("sara").connect(url, people.token(sara))
    try:
        assert (await tutor_call.call("join", {"session_id": a}))["ok"]
        assert (await sara_call.call("join", {"session_id": a}))["ok"]
        assert (await sara_call.call("leave_call", {}))["ok"]
        assert (await tutor_call.call("leave_call", {}))["ok"]
    finally:
        await asyncio.gather(tutor_call.close(), sara_call.close())
    done = {"minutes": 45, "recap": RECAP}
    completed = await call(app, people, "POST", f"/api/sessions/{a}/complete", tutor, done)
    assert completed["state"] == "completed"
    review = {"rating": 5, "text": "Clear and patient."}
    await call(app, people, "POST", f"/api/sessions/{a}/review", sara, review, 201)

    rows = await settled(db)
    by_id = {row.id: row for row in rows}

    # --- emails: exactly these, each once -----------------------------------------------
    got: dict[str, list[tuple[str, str, str | None, str | None]]] = {}
    message_ids = [str(m["Message-ID"]) for m in smtp.messages]
    assert len(message_ids) == len(set(message_ids))
    for message in smtp.messages:
        row = by_id[str(message["Message-ID"]).strip("<>").removesuffix("@classroom")]
        assert row.kind == "email" and row.status == "sent" and row.attempts == 1
        assert row.recipient in str(message["To"])
        label = "A" if row.session_id == a else "B"
        ics = calendar(message) if message.get_content_type() == "multipart/mixed" else None
        if ics is not None:
            assert ics["UID"] == f"{row.session_id}@classroom"
            entry = (label, row.topic, ics["METHOD"], ics["SEQUENCE"])
        else:
            entry = (label, row.topic, None, None)
        got.setdefault(str(row.recipient), []).append(entry)
    invited = ("A", "session.requested", "REQUEST", "0")
    b_invited = ("B", "session.requested", "REQUEST", "0")
    family = [
        invited,
        ("A", "session.rescheduled", "REQUEST", "1"),
        ("A", "session.completed", None, None),
        b_invited,
        ("B", "session.cancelled", "CANCEL", "2"),
    ]
    expected = {
        sara.email: family,
        paula.email: family,
        sid.email: [b_invited, ("B", "session.withdrawn", "CANCEL", "1")],
        tutor.email: [
            invited,
            ("A", "session.accepted", "REQUEST", "0"),
            ("A", "session.rescheduled", "REQUEST", "1"),
            ("A", "session.accepted", "REQUEST", "1"),
            ("A", "review.received", None, None),
            b_invited,
            ("B", "session.accepted", "REQUEST", "0"),
            ("B", "session.accepted", "REQUEST", "0"),
            ("B", "session.withdrawn", None, None),
            ("B", "session.cancelled", "CANCEL", "2"),
        ],
    }
    assert {who: Counter(entries) for who, entries in got.items()} == {
        str(who): Counter(entries) for who, entries in expected.items()
    }
    # Reminders: A's one-hour reminder (3 people) was scheduled on the first acceptance and
    # withdrawn by the move (the new time is too close for any); B's (2 × 4) were scheduled on
    # acceptance, replaced on the withdrawal (2 × 3) and withdrawn on the cancellation.
    reminders = [row for row in rows if row.topic == "reminder"]
    assert Counter(row.session_id for row in reminders) == {a: 3, b: 2 * 4 + 2 * 3}
    assert {row.status for row in reminders} == {"cancelled"}
    assert {row.status for row in rows if row.topic != "reminder"} == {"sent"}

    # Times: the tutor's in their profile's timezone, everyone else's in UTC, labelled.
    [moved_for_tina] = [m for m in smtp.to(str(tutor.email)) if "moved" in subject(m)]
    [moved_for_sara] = [m for m in smtp.to(str(sara.email)) if "moved" in subject(m)]
    assert subject(moved_for_tina) == f"Session moved to {format_when(new_time, TUTOR_ZONE)}"
    assert format_when(first_time, TUTOR_ZONE) in body_text(moved_for_tina)
    assert subject(moved_for_sara) == f"Session moved to {format_when(new_time)}"
    assert format_when(new_time).endswith(" UTC")
    [withdrawn] = [m for m in smtp.to(str(tutor.email)) if "withdrew" in subject(m)]
    assert subject(withdrawn).startswith("Sid Student withdrew from your session on ")
    assert "Exam clash" in body_text(withdrawn)
    [recap] = [m for m in smtp.to(str(paula.email)) if "recap" in subject(m).lower()]
    assert "factoring quadratics" in body_text(recap) and "45 minutes" in body_text(recap)
    everything = "\n".join(m.as_string() for m in smtp.messages)
    assert "PRIVATE" not in everything and "worried" not in everything

    # --- webhooks: signed, numbered per session, in order, each accepted once ----------
    for hit in receiver.hits:
        assert verify(SECRET, hit.body, hit.headers["X-Classroom-Signature"])
    accepted = receiver.accepted()
    assert len({e["id"] for e in accepted}) == len(accepted)
    assert [
        (e["sequence"], e["type"], e["data"].get("user_id"))
        for e in accepted
        if e["session_id"] == a
    ] == [
        (1, "session.started", None),
        (2, "participant.joined", tutor.user_id),
        (3, "participant.joined", sara.user_id),
        (4, "participant.left", sara.user_id),
        (5, "participant.left", tutor.user_id),
        (6, "session.completed", None),
    ]
    started_hits = [h for h in receiver.hits if h.event["type"] == "session.started"]
    assert [h.headers["X-Classroom-Delivery-Attempt"] for h in started_hits] == ["1", "2"]
    [cancelled] = [e for e in accepted if e["session_id"] == b]
    assert (cancelled["sequence"], cancelled["type"]) == (1, "session.cancelled")
    assert cancelled["data"] == {
        "reason": "Tutor is ill",
        "late": False,
        "cancelled_by": tutor.user_id,
        "starts_at": iso(first_time + timedelta(days=2)),
    }
    [finished] = [e for e in accepted if e["type"] == "session.completed"]
    assert finished["data"]["minutes"] == 45
    assert finished["data"]["needs_review"] is True  # 45 minutes logged, seconds together
    [amount] = finished["data"]["amounts"]
    assert (amount["student_id"], amount["minutes"]) == (sara.user_id, 45)
    lefts = [e for e in accepted if e["type"] == "participant.left"]
    assert {e["data"]["reason"] for e in lefts} == {"clean"}
    hooks = "\n".join(h.body.decode() for h in receiver.hits)
    assert "PRIVATE" not in hooks and RECAP[:40] not in hooks


async def test_a_refused_or_rolled_back_change_sends_nothing(
    smtp: SmtpSink,
    receiver: WebhookReceiver,
    make_client: AppFactory,
    db: Database,
    people: People,
) -> None:
    app = await start_app(make_client, smtp, receiver)
    tutor, sara = people.tutor, people.student
    for who in (tutor, sara):
        await call(app, people, "GET", "/api/sessions", who)
    start = next_minute(timedelta(minutes=2))
    body = {"student_ids": [sara.user_id], "starts_at": iso(start), "duration_minutes": 60}
    a = (await call(app, people, "POST", "/api/sessions", tutor, body, 201))["id"]
    await call(app, people, "POST", f"/api/sessions/{a}/accept", sara, {})
    body["starts_at"] = iso(start + timedelta(days=14))
    await call(app, people, "POST", "/api/sessions", tutor, body, 201)
    url = str(app.make_url("/"))
    tutor_call = await Client("tutor").connect(url, people.token(tutor))
    sara_call = await Client("sara").connect(url, people.token(sara))
    try:
        assert (await tutor_call.call("join", {"session_id": a}))["ok"]
        assert (await sara_call.call("join", {"session_id": a}))["ok"]
        assert (await tutor_call.call("leave_call", {}))["ok"]
        before = await settled(db)

        # Sara is still in the classroom: Complete Session is refused, and writes nothing.
        refused = await app.post(
            f"/api/sessions/{a}/complete",
            json={"minutes": 45, "recap": RECAP},
            headers=people.headers(tutor),
        )
        assert refused.status == 409
        assert (await refused.json())["error"]["code"] == "participants_remain"
        # A weekly series whose second booking falls on a day Sara already has a session with
        # this tutor: the first was written (and its emails enqueued) in the same transaction,
        # which rolls back whole.
        series = {
            "student_ids": [sara.user_id],
            "starts_at": iso(start + timedelta(days=7)),
            "duration_minutes": 30,
            "recurrence": {"frequency": "weekly", "count": 3},
        }
        response = await app.post("/api/sessions", json=series, headers=people.headers(tutor))
        assert response.status == 409, await response.text()
        assert (await response.json())["error"]["code"] == "daily_limit"
        assert (await sara_call.call("leave_call", {}))["ok"]
    finally:
        await asyncio.gather(tutor_call.close(), sara_call.close())
    after = await settled(db)
    new = [row for row in after if row.id not in {r.id for r in before}]
    assert [(row.topic, row.subject_id) for row in new] == [("participant.left", sara.user_id)]
    assert len(smtp.messages) == len([r for r in before if r.kind == "email"]) == 2 + 1 + 2
    assert all(r.topic != "session.completed" for r in after)


async def test_committed_but_never_delivered_goes_out_from_the_next_process(
    smtp: SmtpSink,
    receiver: WebhookReceiver,
    make_client: AppFactory,
    db: Database,
    people: People,
) -> None:
    """A process commits a booking and dies before its worker delivers anything (here: its
    worker is stopped first); the next process on the same database delivers it, once."""
    first = await start_app(make_client, smtp, receiver, outbox_poll_seconds=3600)
    await first.app[OUTBOX_WORKER].close()
    tutor, sara = people.tutor, people.student
    for who in (tutor, sara):
        await call(first, people, "GET", "/api/sessions", who)
    start = next_minute(timedelta(days=1))
    body = {"student_ids": [sara.user_id], "starts_at": iso(start), "duration_minutes": 60}
    session_id = (await call(first, people, "POST", "/api/sessions", tutor, body, 201))["id"]
    await call(first, people, "POST", f"/api/sessions/{session_id}/cancel", tutor, {})
    await first.close()
    pending = await outbox_rows(db)
    assert {row.status for row in pending} == {"pending"}
    assert len(pending) == 2 + 2 + 1  # requested ×2, cancelled ×2, session.cancelled
    assert smtp.messages == [] and receiver.hits == []

    await start_app(make_client, smtp, receiver)
    rows = await settled(db)
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}
    assert sorted(subject(m).split(":")[0] for m in smtp.to(str(sara.email))) == [
        "New tutoring session request from Tina Tutor",
        "Session cancelled",
    ]
    assert [h.event["type"] for h in receiver.hits] == ["session.cancelled"]
