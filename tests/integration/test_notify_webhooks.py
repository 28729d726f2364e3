"""Webhooks into a real HTTP receiver: signed, numbered and ordered per session, retried with
backoff, given up with the reason, delivered exactly once by several workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from classroom.db.engine import Database
from classroom.db.tables import utcnow
from classroom.notify.mail import FolderTransport
from classroom.notify.model import InvoiceInfo
from classroom.notify.notifier import Notifier
from classroom.notify.webhook import verify
from classroom.notify.worker import WorkerOptions
from tests.conftest import make_settings
from tests.integration.test_notify_receivers import (
    FAST,
    SECRET,
    STUDENT,
    TUTOR,
    WebhookReceiver,
    a_session,
    drain,
    make_worker,
    outbox_rows,
    running_receiver,
)
from tests.support import wait_until


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as hook:
        yield hook


def notifier(database_url: str, **overrides: Any) -> Notifier:
    settings = make_settings(
        database_url,
        webhook_url="http://127.0.0.1:9/replaced-by-the-worker",
        webhook_secret=SECRET,
        **overrides,
    )
    return Notifier(settings)


async def test_events_are_signed_numbered_and_complete(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    notify = notifier(database_url)
    session = a_session()
    started = utcnow()
    async with db.transaction() as tx:
        assert await notify.participant_joined(tx, session.id, TUTOR.user_id, "tutor")
        assert await notify.session_started(tx, session.id, started)
        assert await notify.participant_joined(tx, session.id, STUDENT.user_id, "student")
    async with db.transaction() as tx:
        assert await notify.participant_left(tx, session.id, STUDENT.user_id, "student", "timeout")
        assert await notify.participant_left(tx, session.id, TUTOR.user_id, "tutor", "clean")
        await notify.session_completed(
            tx,
            session,
            recap="r" * 150,
            minutes=55,
            invoices=[InvoiceInfo("inv-1", STUDENT.user_id, 55, 4125)],
            needs_review=True,
        )
    worker = make_worker(db, mail=FolderTransport(tmp_path), webhook_url=receiver.url)
    try:
        await drain(worker)
    finally:
        await worker.close()

    events = [hit.event for hit in receiver.hits]
    assert [(e["sequence"], e["type"]) for e in events] == [
        (1, "participant.joined"),
        (2, "session.started"),
        (3, "participant.joined"),
        (4, "participant.left"),
        (5, "participant.left"),
        (6, "session.completed"),
    ]
    for hit in receiver.hits:
        assert verify(SECRET, hit.body, hit.headers["X-Classroom-Signature"])
        assert hit.headers["X-Classroom-Signature"].startswith("sha256=")
        assert (
            hit.headers["X-Classroom-Event-Id"] == hit.event["id"] == hit.headers["Idempotency-Key"]
        )
        assert hit.headers["X-Classroom-Event"] == hit.event["type"]
        assert hit.headers["Content-Type"] == "application/json"
        assert hit.event["session_id"] == session.id
        assert hit.event["created_at"].endswith("Z")
    assert events[3]["data"] == {
        "user_id": STUDENT.user_id,
        "role": "student",
        "reason": "timeout",
        "at": events[3]["data"]["at"],
    }
    assert events[5]["data"]["minutes"] == 55
    assert events[5]["data"]["needs_review"] is True
    assert events[5]["data"]["amounts"] == [
        {
            "student_id": STUDENT.user_id,
            "invoice_id": "inv-1",
            "minutes": 55,
            "amount_cents": 4125,
            "currency": "USD",
        }
    ]
    assert "r" * 150 not in str(events[5])  # the recap is for people, not the webhook


async def test_left_never_goes_out_without_joined(db: Database, database_url: str) -> None:
    notify = notifier(database_url)
    async with db.transaction() as tx:
        assert not await notify.participant_left(tx, "s-1", STUDENT.user_id, "student", "clean")
        assert await notify.participant_joined(tx, "s-1", STUDENT.user_id, "student")
        assert not await notify.participant_joined(tx, "s-1", STUDENT.user_id, "student")
        assert await notify.participant_left(tx, "s-1", STUDENT.user_id, "student", "clean")
        assert not await notify.participant_left(tx, "s-1", STUDENT.user_id, "student", "clean")
        assert await notify.participant_joined(tx, "s-1", STUDENT.user_id, "student")
        # other sessions and other users are separate
        assert not await notify.participant_left(tx, "s-2", STUDENT.user_id, "student", "clean")
        assert not await notify.participant_left(tx, "s-1", TUTOR.user_id, "tutor", "clean")
        # lifecycle events go out once per session
        assert await notify.session_started(tx, "s-1", utcnow())
        assert not await notify.session_started(tx, "s-1", utcnow())
        assert await notify.session_missed(tx, "s-2", "not_accepted")
    rows = await outbox_rows(db)
    assert [(r.session_id, r.sequence, r.topic) for r in rows] == [
        ("s-1", 1, "participant.joined"),
        ("s-1", 2, "participant.left"),
        ("s-1", 3, "participant.joined"),
        ("s-1", 4, "session.started"),
        ("s-2", 1, "session.missed"),
    ]


async def test_without_a_webhook_url_nothing_is_written(db: Database, database_url: str) -> None:
    notify = Notifier(make_settings(database_url))
    async with db.transaction() as tx:
        assert not await notify.participant_joined(tx, "s-1", STUDENT.user_id, "student")
        assert not await notify.session_started(tx, "s-1", utcnow())
    assert await outbox_rows(db) == []


async def test_a_failing_receiver_is_retried_with_backoff_then_recorded_failed(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    receiver.status_for = lambda event, attempt: 500
    async with db.transaction() as tx:
        await notifier(database_url).session_started(tx, "s-1", utcnow())
    options = WorkerOptions(
        max_attempts=4,
        lease_seconds=30,
        retry_base_seconds=0.1,
        retry_max_seconds=5,
        poll_seconds=0.2,
    )
    worker = make_worker(
        db, mail=FolderTransport(tmp_path), webhook_url=receiver.url, options=options
    )
    worker.start()
    try:

        async def failed() -> bool:
            return [r.status for r in await outbox_rows(db)] == ["failed"]

        await wait_until(failed, timeout=20)
    finally:
        await worker.close()
    assert len(receiver.hits) == 4
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    for index, gap in enumerate(gaps):  # 0.1, 0.2, 0.4 s at least: exponential backoff
        assert gap >= 0.1 * 2**index * 0.95, gaps
    assert [h.headers["X-Classroom-Delivery-Attempt"] for h in receiver.hits] == [
        "1",
        "2",
        "3",
        "4",
    ]
    [row] = await outbox_rows(db)
    assert row.attempts == 4
    assert row.last_error is not None
    assert row.last_error.startswith("gave up after 4 attempt(s): WebhookError: HTTP 500")
    assert "receiver broke" in row.last_error
    assert row.sent_at is None


async def test_later_events_of_a_session_wait_for_earlier_ones(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    # the first try of every second event fails: its successors must wait for its retry
    receiver.status_for = lambda event, attempt: (
        503 if event["sequence"] % 2 == 0 and attempt == 1 else 200
    )
    notify = notifier(database_url)
    sessions = [f"s-{n}" for n in range(3)]
    async with db.transaction() as tx:
        for session_id in sessions:
            for user in range(3):
                await notify.participant_joined(tx, session_id, f"u-{user}", "student")
                await notify.participant_left(tx, session_id, f"u-{user}", "student", "clean")
    worker = make_worker(db, mail=FolderTransport(tmp_path), webhook_url=receiver.url)
    worker.start()
    try:

        async def all_sent() -> bool:
            rows = await outbox_rows(db)
            return len(rows) == 18 and all(r.status == "sent" for r in rows)

        await wait_until(all_sent, timeout=20)
    finally:
        await worker.close()
    accepted = receiver.accepted()
    assert len(accepted) == 18
    for session_id in sessions:
        sequences = [e["sequence"] for e in accepted if e["session_id"] == session_id]
        assert sequences == [1, 2, 3, 4, 5, 6]
    # and no event was attempted while an earlier one of its session was still undelivered
    done: dict[str, int] = {}
    for index, hit in enumerate(receiver.hits):
        event = hit.event
        assert event["sequence"] == done.get(event["session_id"], 0) + 1, index
        attempt = sum(1 for h in receiver.hits[: index + 1] if h.event["id"] == event["id"])
        if receiver.status_for(event, attempt) < 300:
            done[event["session_id"]] = event["sequence"]


async def test_two_workers_deliver_every_row_exactly_once(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    notify = notifier(database_url)
    async with db.transaction() as tx:
        for n in range(12):
            await notify.session_started(tx, f"s-{n}", utcnow())
            await notify.session_requested(tx, a_session(f"s-{n}", parents=()))
    rows = await outbox_rows(db)
    assert len(rows) == 12 * 4  # a webhook and three emails per session

    second = Database(database_url)  # another "process": its own engine and pool
    folder = FolderTransport(tmp_path / "mail")
    options = WorkerOptions(
        max_attempts=3,
        lease_seconds=30,
        retry_base_seconds=0.05,
        retry_max_seconds=1,
        poll_seconds=0.05,
        batch_size=3,
    )
    workers = [
        make_worker(db, mail=folder, webhook_url=receiver.url, options=options, name="w1"),
        make_worker(second, mail=folder, webhook_url=receiver.url, options=options, name="w2"),
    ]
    claimed: dict[str, list[str]] = {w.name: [] for w in workers}
    for worker in workers:
        original = worker.claim

        async def spy(original: Any = original, name: str = worker.name) -> Any:
            batch = await original()
            claimed[name].extend(message.id for message in batch)
            return batch

        worker.claim = spy  # type: ignore[method-assign]
    try:
        for worker in workers:
            worker.start()

        async def all_sent() -> bool:
            return all(r.status == "sent" for r in await outbox_rows(db))

        await wait_until(all_sent, timeout=30)
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await second.close()
    ids = claimed["w1"] + claimed["w2"]
    assert sorted(ids) == sorted(r.id for r in rows)  # each row claimed once, by one worker
    assert sorted(h.event["id"] for h in receiver.hits) == sorted(
        r.id for r in rows if r.kind == "webhook"
    )
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 36
    assert {r.attempts for r in await outbox_rows(db)} == {1}


async def test_the_worker_wakes_up_right_after_a_commit(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    notify = notifier(database_url)
    slow_poll = WorkerOptions(
        max_attempts=3,
        lease_seconds=30,
        retry_base_seconds=1,
        retry_max_seconds=1,
        poll_seconds=60,
    )
    worker = make_worker(
        db, mail=FolderTransport(tmp_path), webhook_url=receiver.url, options=slow_poll
    )
    notify.subscribe(worker.wake)
    worker.start()
    try:
        async with db.transaction() as tx:
            await notify.session_started(tx, "s-1", utcnow())
        await wait_until(lambda: len(receiver.hits) == 1, timeout=5)  # far below the poll
    finally:
        await worker.close()
        await worker.close()  # idempotent


async def test_a_lease_that_expires_lets_another_worker_deliver(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    """A worker that claimed a row and died: after its lease, a new worker delivers it once."""
    async with db.transaction() as tx:
        await notifier(database_url).session_started(tx, "s-1", utcnow())
    crashed = make_worker(db, mail=FolderTransport(tmp_path), webhook_url=receiver.url)
    [message] = await crashed.claim()  # claimed and committed, then the process dies
    await crashed.close()

    now = utcnow()
    restarted = make_worker(
        db, mail=FolderTransport(tmp_path), webhook_url=receiver.url, clock=lambda: now
    )
    try:
        assert await drain(restarted) == 0  # the lease still holds
        later = make_worker(
            db,
            mail=FolderTransport(tmp_path),
            webhook_url=receiver.url,
            clock=lambda: now + timedelta(seconds=FAST.lease_seconds + 1),
        )
        try:
            assert await drain(later) == 1
        finally:
            await later.close()
    finally:
        await restarted.close()
    [hit] = receiver.hits
    assert hit.event["id"] == message.id
    assert hit.headers["X-Classroom-Delivery-Attempt"] == "2"
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_rows_committed_before_any_worker_runs_are_delivered_by_a_new_one(
    db: Database, database_url: str, receiver: WebhookReceiver, tmp_path: Any
) -> None:
    """The process committed and died before delivering: the next process's worker sends it."""
    async with db.transaction() as tx:
        await notifier(database_url).session_missed(tx, "s-1", "not_accepted")
    restarted = make_worker(db, mail=FolderTransport(tmp_path), webhook_url=receiver.url)
    restarted.start()
    try:
        await wait_until(lambda: len(receiver.hits) == 1)
    finally:
        await restarted.close()
    assert receiver.hits[0].event["type"] == "session.missed"
    assert receiver.hits[0].event["data"] == {"reason": "not_accepted", "state": "missed"}
