"""Delivery outcomes: written only under a lease that still holds, and those finishing together
written in one transaction."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import event, update

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, utcnow
from classroom.notify.delivery import Channels, Claimed
from classroom.notify.mail import FolderTransport
from classroom.notify.outbox import EMAIL, after_commit, enqueue
from classroom.notify.outcomes import Outcome, OutcomeWriter, write
from classroom.notify.worker import OutboxWorker, WorkerOptions
from tests.integration.test_notify_receivers import (
    MAIL_FROM,
    drain,
    make_worker,
    outbox_rows,
)
from tests.support import wait_until


async def _emails(db: Database, count: int) -> None:
    async with db.transaction() as tx:
        for n in range(count):
            await enqueue(
                tx,
                kind=EMAIL,
                topic="session.completed",
                key=f"email-{n}",
                payload={"to": f"s{n}@example.test", "subject": "Hi", "text": "t", "html": "h"},
                recipient=f"s{n}@example.test",
                session_id="s-1",
            )


def _sent(message_id: str, token: str) -> Outcome:
    values: dict[str, object] = {
        "status": "sent",
        "sent_at": utcnow(),
        "leased_until": None,
        "lease_token": None,
    }
    return Outcome(message_id, token, values)


async def test_an_outcome_whose_lease_was_lost_is_not_written(db: Database, tmp_path: Path) -> None:
    await _emails(db, 3)
    worker = make_worker(db, mail=FolderTransport(tmp_path))
    try:
        first, second, third = sorted(await worker.claim(), key=lambda m: m.id)
    finally:
        await worker.close()
    async with db.transaction() as tx:  # the lease expired and another worker took the row
        await tx.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == second.id)
            .values(lease_token="someone-else")
        )
    kept = await write(
        db,
        [
            _sent(first.id, first.lease_token),
            _sent(second.id, second.lease_token),
            _sent(third.id, third.lease_token),
        ],
    )
    assert kept == [True, False, True]
    rows = {row.id: row for row in await outbox_rows(db)}
    assert [rows[m.id].status for m in (first, second, third)] == ["sent", "pending", "sent"]
    assert rows[second.id].lease_token == "someone-else"
    assert rows[first.id].lease_token is None and rows[first.id].sent_at is not None

    assert await write(db, [_sent(second.id, second.lease_token)]) == [False]
    assert {row.id: row.status for row in await outbox_rows(db)}[second.id] == "pending"


async def test_outcomes_finishing_together_share_a_transaction(
    db: Database, tmp_path: Path
) -> None:
    await _emails(db, 12)
    worker = make_worker(db, mail=FolderTransport(tmp_path))
    try:
        claimed = await worker.claim()
    finally:
        await worker.close()
    assert len(claimed) == 12
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(db.engine.sync_engine, "commit", committed)
    try:
        writer = OutcomeWriter(db)
        kept = await asyncio.gather(*(writer.record(_sent(m.id, m.lease_token)) for m in claimed))
        await writer.close()
    finally:
        event.remove(db.engine.sync_engine, "commit", committed)
    assert kept == [True] * 12
    assert all(row.status == "sent" for row in await outbox_rows(db))
    assert len(commits) <= 2  # the first alone at most, then the rest together


async def test_a_worker_delivers_a_batch_and_records_every_outcome(
    db: Database, tmp_path: Path
) -> None:
    await _emails(db, 25)  # more than one batch
    worker = make_worker(db, mail=FolderTransport(tmp_path))
    try:
        assert await drain(worker) == 25
    finally:
        await worker.close()
    rows = await outbox_rows(db)
    assert [row.status for row in rows] == ["sent"] * 25
    assert all(row.lease_token is None and row.attempts == 1 for row in rows)
    assert len(_written(tmp_path)) == 25


def _written(folder: Path) -> list[Path]:
    return list(folder.glob("*.eml"))


class _CountingWorker(OutboxWorker):
    passes: list[int]
    claims = 0

    async def claim(self) -> list[Claimed]:
        claimed = await super().claim()
        self.claims += 1
        if claimed:
            self.passes.append(len(claimed))
        return claimed


async def test_commits_right_behind_a_wake_up_go_in_the_same_pass(
    db: Database, tmp_path: Path
) -> None:
    options = WorkerOptions(
        max_attempts=3,
        lease_seconds=30,
        retry_base_seconds=1,
        retry_max_seconds=1,
        poll_seconds=60,
        linger_seconds=2,
    )
    worker = _CountingWorker(db, Channels(FolderTransport(tmp_path), MAIL_FROM), options)
    worker.passes = []
    worker.start()
    try:
        await wait_until(lambda: worker.claims > 0)  # its first pass found nothing
        for n in range(5):  # five commits, each waking the worker
            async with db.transaction() as tx:
                await enqueue(
                    tx,
                    kind=EMAIL,
                    topic="session.completed",
                    key=f"email-{n}",
                    payload={"to": "s@example.test", "subject": "Hi", "text": "t", "html": "h"},
                    recipient="s@example.test",
                )
                after_commit(tx, worker.wake)

        async def all_sent() -> bool:
            rows = await outbox_rows(db)
            return len(rows) == 5 and all(row.status == "sent" for row in rows)

        await wait_until(all_sent, timeout=20)
    finally:
        await worker.close()
    assert worker.passes == [5]


class _Ticking(FolderTransport):
    """Records how many passes of the event loop a ticker had made when each email was sent."""

    def __init__(self, folder: Path, ticks: list[int]) -> None:
        super().__init__(folder)
        self.ticks = ticks
        self.seen: list[int] = []

    async def send(self, message: EmailMessage, message_id: str, created_at: datetime) -> None:
        self.seen.append(self.ticks[0])  # called right after the email was built
        await super().send(message, message_id, created_at)


async def test_each_delivery_of_a_pass_starts_in_its_own_pass_of_the_loop(
    db: Database, tmp_path: Path
) -> None:
    await _emails(db, 6)
    ticks = [0]
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks[0] += 1
            await asyncio.sleep(0)

    mail = _Ticking(tmp_path, ticks)
    worker = make_worker(db, mail=mail)
    ticking = asyncio.create_task(ticker())
    try:
        assert await worker.run_once() == 6
    finally:
        stop.set()
        await ticking
        await worker.close()
    assert len(mail.seen) == 6
    assert len(set(mail.seen)) == 6  # other work ran between any two of them
