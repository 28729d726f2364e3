"""The outbox worker: claims due rows, delivers them, records the outcome.

Claiming is one short transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's
``BEGIN IMMEDIATE`` serialises claimers instead), then each row gets ``attempts + 1``, a lease
(``leased_until``) and a fresh ``lease_token``. Delivery happens outside any transaction; the
outcome is written only if the lease token still matches. A worker that dies mid-delivery leaves
the row leased; once the lease expires another worker (or this one restarted) takes it again.
Webhooks of one session go out in sequence order: a row waits while an earlier one of its
session is still pending. Failures are retried with exponential backoff until
``max_attempts``; then the row is ``failed`` with the reason in ``last_error``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, utcnow
from classroom.notify.delivery import Channels, Claimed
from classroom.notify.errors import PermanentDeliveryError
from classroom.notify.outbox import CANCELLED, FAILED, PENDING, SENT, WEBHOOK
from classroom.notify.outcomes import Outcome, OutcomeWriter

log = logging.getLogger(__name__)

_NOW: BindParameter[datetime] = bindparam("now")
_EARLIER = aliased(OutboxMessage)
_CLAIM = (  # built once: building a statement costs about as much as running it
    select(OutboxMessage)
    .where(
        OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at <= _NOW,
        or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until <= _NOW),
        or_(
            OutboxMessage.kind != WEBHOOK,
            ~exists().where(
                _EARLIER.kind == WEBHOOK,
                _EARLIER.session_id == OutboxMessage.session_id,
                _EARLIER.sequence < OutboxMessage.sequence,
                _EARLIER.status == PENDING,
            ),
        ),
    )
    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.sequence)
    .limit(bindparam("batch_size"))
    .with_for_update(skip_locked=True, of=OutboxMessage)
)
_NEXT_DUE = select(
    func.min(OutboxMessage.next_attempt_at), func.min(OutboxMessage.leased_until)
).where(
    OutboxMessage.status == PENDING,
    or_(OutboxMessage.next_attempt_at > _NOW, OutboxMessage.leased_until > _NOW),
)


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    max_attempts: int = 8
    lease_seconds: float = 120.0
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0
    poll_seconds: float = 5.0
    batch_size: int = 20
    linger_seconds: float = 0.1  # after a wake-up, before claiming


def backoff(attempts: int, base: float, cap: float, jitter: float = 0.2) -> float:
    """Seconds before the next try after ``attempts`` failures: base·2^(n-1), capped, +0-20%."""
    delay: float = min(cap, base * float(2 ** max(0, attempts - 1)))
    return min(cap, delay * (1 + random.uniform(0, jitter)))


def _expired(payload: dict[str, object], now: datetime) -> str | None:
    """Why a message is no longer worth sending (``expires_at`` in its payload has passed)."""
    value = payload.get("expires_at")
    if not isinstance(value, str):
        return None
    try:
        expires_at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if expires_at.tzinfo is None or now <= expires_at:
        return None
    return f"expired: not delivered by {value}"


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if text.startswith(type(error).__name__) else f"{type(error).__name__}: {text}"


class OutboxWorker:
    """One background task per process; ``close()`` stops it (idempotent)."""

    def __init__(
        self,
        db: Database,
        channels: Channels,
        options: WorkerOptions | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.options = options or WorkerOptions()
        self.name = name or f"outbox-{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._outcomes = OutcomeWriter(db)
        self._again = False  # the last pass may have left due rows behind

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            log.info("%s: started", self.name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (called after a commit that enqueued)."""
        self._wake.set()

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop: a pass under way may finish (up to ``grace_seconds``), then the task is
        cancelled. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            done, _ = await asyncio.wait({task}, timeout=grace_seconds)
            if not done:
                log.warning("%s: still delivering after %ss; cancelled", self.name, grace_seconds)
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._outcomes.close(grace_seconds)
        await self.channels.close()
        log.info("%s: stopped", self.name)

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                if await self.run_once() and self._again and not self._closed:
                    continue  # a full batch, or webhooks whose successors may be due now
                delay = await self._idle_delay()
            except Exception:
                log.exception("%s: outbox pass failed; trying again later", self.name)
                delay = self.options.poll_seconds
            if self._closed:
                return
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                continue
            await self._linger()

    async def _linger(self) -> None:
        """Woken by a commit: let the commits right behind it join the same pass (one claim and
        one outcome transaction for many rows rather than per row), unless closing."""
        if self.options.linger_seconds <= 0:
            return
        try:
            async with asyncio.timeout(self.options.linger_seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    # --- one pass ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them; the number claimed."""
        claimed = await self.claim()
        if claimed:
            await self._deliver_all(claimed)
        return len(claimed)

    async def _deliver_all(self, claimed: list[Claimed]) -> None:
        """Deliver concurrently, each delivery started in a pass of the event loop of its own:
        what one does before its first wait (building an email, about a millisecond) never holds
        the loop for the whole batch while requests wait."""
        tasks: list[asyncio.Task[None]] = []
        try:
            for message in claimed:
                tasks.append(asyncio.create_task(self._deliver(message)))
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def claim(self) -> list[Claimed]:
        options = self.options
        now = self._clock()
        claimed: list[Claimed] = []
        async with self.db.transaction() as tx:
            params = {"now": now, "batch_size": options.batch_size}
            rows = (await tx.execute(_CLAIM, params)).scalars().all()
            self._again = len(rows) >= options.batch_size or any(
                row.kind == WEBHOOK for row in rows
            )
            for row in rows:
                expired = _expired(row.payload, now)
                if expired:
                    row.status = CANCELLED
                    row.leased_until = None
                    row.lease_token = None
                    row.last_error = expired
                    log.info("outbox %s: %s %s dropped: %s", row.id, row.kind, row.topic, expired)
                    continue
                if row.attempts >= options.max_attempts:
                    row.status = FAILED
                    row.leased_until = None
                    row.lease_token = None
                    row.last_error = (
                        f"gave up after {row.attempts} attempts: the last delivery was "
                        f"interrupted (lease expired); {row.last_error or 'no error recorded'}"
                    )
                    log.error(
                        "outbox %s: %s %s failed: %s", row.id, row.kind, row.topic, row.last_error
                    )
                    continue
                row.attempts += 1
                row.leased_until = now + timedelta(seconds=options.lease_seconds)
                row.lease_token = str(uuid.uuid4())
                claimed.append(
                    Claimed(
                        id=row.id,
                        kind=row.kind,
                        topic=row.topic,
                        recipient=row.recipient,
                        session_id=row.session_id,
                        sequence=row.sequence,
                        payload=dict(row.payload),
                        attempts=row.attempts,
                        created_at=row.created_at,
                        lease_token=row.lease_token,
                    )
                )
        return claimed

    async def _deliver(self, message: Claimed) -> None:
        error: BaseException | None = None
        try:
            async with asyncio.timeout(self.options.lease_seconds / 2):
                await self.channels.deliver(message)
        except Exception as exc:
            error = exc
        try:
            await self._finish(message, error)
        except Exception:
            log.exception(
                "outbox %s: could not record the outcome of %s; the lease will expire and it "
                "may be delivered again",
                message.id,
                message.describe(),
            )

    async def _finish(self, message: Claimed, error: BaseException | None) -> None:
        now = self._clock()
        values: dict[str, object] = {"leased_until": None, "lease_token": None}
        if error is None:
            values |= {"status": SENT, "sent_at": now, "last_error": None}
        else:
            reason = _describe(error)
            permanent = isinstance(error, PermanentDeliveryError)
            if permanent or message.attempts >= self.options.max_attempts:
                values |= {
                    "status": FAILED,
                    "last_error": f"gave up after {message.attempts} attempt(s): {reason}",
                }
            else:
                delay = backoff(
                    message.attempts,
                    self.options.retry_base_seconds,
                    self.options.retry_max_seconds,
                )
                values |= {
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "last_error": reason,
                }
        held = await self._outcomes.record(Outcome(message.id, message.lease_token, values))
        if not held:
            log.warning(
                "outbox %s: lease lost before the outcome of %s was recorded",
                message.id,
                message.describe(),
            )
        elif error is None:
            log.info(
                "outbox %s: %s delivered (attempt %d)",
                message.id,
                message.describe(),
                message.attempts,
            )
        elif values.get("status") == FAILED:
            log.error(
                "outbox %s: %s failed: %s", message.id, message.describe(), values["last_error"]
            )
        else:
            log.warning(
                "outbox %s: %s attempt %d failed (%s); next try at %s",
                message.id,
                message.describe(),
                message.attempts,
                values["last_error"],
                values["next_attempt_at"],
            )

    async def _idle_delay(self) -> float:
        """Seconds until the next pending row becomes due or a lease expires (≤ the poll)."""
        now = self._clock()
        async with self.db.reader() as tx:
            due = (await tx.execute(_NEXT_DUE, {"now": now})).one()
        poll = self.options.poll_seconds
        moments: list[datetime] = [m for m in due if m is not None and m > now]
        if not moments:
            return poll
        wait: float = (min(moments) - now).total_seconds()
        return max(0.01, min(poll, wait))
