"""Several server processes on one database: every reminder, retry and webhook goes out exactly
once, and each session's webhooks stay in order across processes. Two real applications (each
with its own engine, pool and outbox worker) share the test's database — PostgreSQL claims with
``FOR UPDATE SKIP LOCKED``, SQLite queues claimers with ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from classroom.db.engine import Database
from classroom.db.tables import utcnow
from classroom.notify.notifier import Notifier
from classroom.notify.webhook import verify
from classroom.notify.wiring import OUTBOX_WORKER
from classroom.notify.worker import OutboxWorker
from tests.conftest import AppFactory, make_settings
from tests.integration.test_notify_receivers import (
    MAIL_FROM,
    SECRET,
    TUTOR,
    SmtpSink,
    WebhookReceiver,
    a_session,
    outbox_rows,
    running_receiver,
    running_smtp,
)
from tests.support import wait_until

SESSIONS = 8


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with running_smtp() as sink:
        yield sink


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as hook:
        yield hook


async def spy_on_claims(worker: OutboxWorker, claimed: list[str]) -> None:
    """Record every row id ``worker`` claims, and claim two at a time so both processes race.
    Returns once a claim went through the spy (one already under way when it was installed
    is then over)."""
    worker.options = dataclasses.replace(worker.options, batch_size=2)
    original = worker.claim
    passes: list[int] = []

    async def claim() -> Any:
        batch = await original()
        claimed.extend(message.id for message in batch)
        passes.append(len(batch))
        return batch

    worker.claim = claim  # type: ignore[method-assign]
    await wait_until(lambda: len(passes) >= 1, timeout=5)


async def test_two_processes_deliver_reminders_retries_and_webhooks_exactly_once(
    smtp: SmtpSink,
    receiver: WebhookReceiver,
    make_client: AppFactory,
    db: Database,
    database_url: str,
) -> None:
    # Every session's second webhook fails once: it is retried, and its third waits for it.
    receiver.status_for = lambda event, attempt: (
        500 if event["sequence"] == 2 and attempt == 1 else 200
    )
    settings: dict[str, Any] = {
        "smtp_url": smtp.url,
        "mail_from": MAIL_FROM,
        "webhook_url": receiver.url,
        "webhook_secret": SECRET,
        "outbox_poll_seconds": 0.05,
        "outbox_retry_base_seconds": 0.05,
        "outbox_retry_max_seconds": 0.2,
    }
    apps = [await make_client(**settings), await make_client(**settings)]
    claimed: dict[int, list[str]] = {0: [], 1: []}
    for index, app in enumerate(apps):
        await spy_on_claims(app.app[OUTBOX_WORKER], claimed[index])

    # Reminders scheduled two days ago for sessions starting in 50 minutes: the one-hour
    # reminder fell due 10 minutes ago (sent, once); the 24-hour one is long overdue and would
    # say "in 24 hours" (dropped as expired).
    now = utcnow()
    scheduled = Notifier(
        make_settings(database_url, webhook_url=receiver.url, webhook_secret=SECRET),
        clock=lambda: now - timedelta(days=2),
    )
    starts_at = (now + timedelta(minutes=50)).replace(microsecond=0)
    sessions = [a_session(f"s-{n}", starts_at=starts_at, state="accepted") for n in range(SESSIONS)]
    for session in sessions:
        async with db.transaction() as tx:
            assert await scheduled.schedule_reminders(tx, session) == 2 * 4
            assert await scheduled.session_started(tx, session.id, now)
            assert await scheduled.participant_joined(tx, session.id, TUTOR.user_id, "tutor")
            assert await scheduled.participant_left(tx, session.id, TUTOR.user_id, "tutor", "clean")

    async def settled() -> bool:
        return all(row.status != "pending" for row in await outbox_rows(db))

    await wait_until(settled, timeout=30)
    rows = await outbox_rows(db)

    # Both processes took part, and no row was claimed more often than it was attempted.
    assert claimed[0] and claimed[1]
    claims = Counter(claimed[0] + claimed[1])
    assert claims == {row.id: row.attempts for row in rows if row.attempts}

    reminders = [row for row in rows if row.topic == "reminder"]
    hour = [row for row in reminders if row.payload["subject"].endswith("in 1 hour")]
    day = [row for row in reminders if row.payload["subject"].endswith("in 24 hours")]
    assert len(hour) == len(day) == SESSIONS * 4
    assert {(row.status, row.attempts) for row in hour} == {("sent", 1)}
    assert {row.status for row in day} == {"cancelled"}
    assert all(str(row.last_error).startswith("expired: ") for row in day)
    message_ids = Counter(str(m["Message-ID"]) for m in smtp.messages)
    assert sorted(message_ids) == sorted(f"<{row.id}@classroom>" for row in hour)
    assert set(message_ids.values()) == {1}

    webhooks = [row for row in rows if row.kind == "webhook"]
    assert len(webhooks) == SESSIONS * 3
    assert {(row.sequence, row.status, row.attempts) for row in webhooks} == {
        (1, "sent", 1),
        (2, "sent", 2),
        (3, "sent", 1),
    }
    for hit in receiver.hits:
        assert verify(SECRET, hit.body, hit.headers["X-Classroom-Signature"])
    accepted = receiver.accepted()
    assert sorted(e["id"] for e in accepted) == sorted(row.id for row in webhooks)
    for session in sessions:  # in order per session, though two processes delivered them
        mine = [h.event["sequence"] for h in receiver.hits if h.event["session_id"] == session.id]
        assert mine == [1, 2, 2, 3]
    await asyncio.gather(*(app.close() for app in apps))
