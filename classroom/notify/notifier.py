"""The notifications port the sessions and rooms services call inside their transactions.

Every method writes outbox rows with the caller's ``tx`` and returns; nothing leaves the process
until that transaction commits, and then the worker is woken at once. A rollback sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from classroom.config import Settings
from classroom.db.tables import utcnow
from classroom.notify import absence, messages
from classroom.notify.events import enqueue_event, iso, presence_event
from classroom.notify.ical import render_invite
from classroom.notify.messages import Outgoing
from classroom.notify.model import InvoiceInfo, Person, SessionInfo
from classroom.notify.outbox import (
    EMAIL,
    Pending,
    after_commit,
    calendar_sequence,
    cancel_pending,
    enqueue,
    enqueue_many,
    revive,
)

log = logging.getLogger(__name__)

# A reminder still undelivered this far past its time (a quarter of its offset: 6 h for the 24-hour
# one, 15 min for the 1-hour one) would say the wrong thing; the worker drops it as expired.
REMINDER_LATE_FRACTION = 0.25


class Notifier:
    """Intent-level helpers: one call per use case, emails and webhooks included."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._reminders = tuple(settings.reminders_minutes)
        self._webhooks = settings.webhook_url is not None
        self._organizer = settings.mail_from
        self._link = settings.public_url
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, wake: Callable[[], None]) -> None:
        """``wake`` is called after each commit that wrote something (the worker's wake-up)."""
        self._listeners.append(wake)

    def _written(self, tx: AsyncSession) -> None:
        for wake in self._listeners:
            after_commit(tx, wake)

    async def _emails(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        outgoing: Sequence[Outgoing],
        sequence: int,
        deliver_after: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> int:
        written = 0
        now = self._clock()
        batch: list[Pending] = []
        for item in outgoing:
            if not item.person.email:
                log.info(
                    "session %s: %s has no email address; %s not emailed",
                    session.id,
                    item.person.user_id,
                    item.topic,
                )
                continue
            payload: dict[str, Any] = {
                "to": item.person.email,
                "to_name": item.person.display_name,
                **item.rendered.to_payload(),
            }
            if expires_at is not None:
                payload["expires_at"] = iso(expires_at)
            if item.calendar:
                payload["ics_method"] = item.calendar
                payload["ics"] = render_invite(
                    session,
                    method=item.calendar,
                    sequence=sequence,
                    now=now,
                    attendee=item.person,
                    organizer=self._organizer,
                    url=self._link,
                )
            if deliver_after is None:
                batch.append(
                    Pending(item.topic, item.key, payload, item.person.email, item.person.user_id)
                )
                continue
            if await revive(tx, item.key, payload, deliver_after):
                written += 1
                continue
            row_id = await enqueue(
                tx,
                kind=EMAIL,
                topic=item.topic,
                key=item.key,
                payload=payload,
                recipient=item.person.email,
                session_id=session.id,
                subject_id=item.person.user_id,
                deliver_after=deliver_after,
            )
            written += row_id is not None
        written += len(await enqueue_many(tx, EMAIL, session.id, batch))
        if written:
            self._written(tx)
        return written

    # --- the session lifecycle (emails, calendar, and the matching webhooks) ---------------

    async def session_requested(self, tx: AsyncSession, session: SessionInfo) -> int:
        """Created: students and linked parents are asked, the tutor gets a copy; all get the
        calendar invitation. Returns the number of emails written."""
        sequence = await calendar_sequence(tx, session.id)
        return await self._emails(tx, session, messages.requested(session, self._link), sequence)

    async def session_responded(
        self, tx: AsyncSession, session: SessionInfo, student: Person, accepted: bool
    ) -> int:
        """A student accepted or declined: the tutor is told."""
        sequence = await calendar_sequence(tx, session.id)
        outgoing = messages.responded(session, student, accepted, sequence, self._link)
        return await self._emails(tx, session, outgoing, sequence)

    async def session_rescheduled(
        self, tx: AsyncSession, session: SessionInfo, previous_starts_at: datetime
    ) -> int:
        """Moved (``session`` carries the new time): everyone gets the updated invitation, and
        the pending reminders for the old time are withdrawn. Call ``schedule_reminders`` again
        once the new time is accepted."""
        await self.cancel_reminders(tx, session.id, "rescheduled")
        sequence = await calendar_sequence(tx, session.id, bump=True)
        outgoing = messages.rescheduled(session, previous_starts_at, sequence, self._link)
        return await self._emails(tx, session, outgoing, sequence)

    async def session_cancelled(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        *,
        reason: str | None,
        late: bool,
        by: Person | None = None,
    ) -> int:
        """Cancelled: everyone is told (reason, lateness) and the calendar event is cancelled;
        pending reminders are withdrawn; webhook ``session.cancelled``."""
        await self.cancel_reminders(tx, session.id, "cancelled")
        sequence = await calendar_sequence(tx, session.id, bump=True)
        outgoing = messages.cancelled(session, reason=reason, late=late, by=by, link=self._link)
        written = await self._emails(tx, session, outgoing, sequence)
        data = {
            "reason": reason,
            "late": late,
            "cancelled_by": by.user_id if by else None,
            "starts_at": iso(session.starts_at),
        }
        await self._event(tx, session.id, "session.cancelled", data, once=True)
        return written

    async def student_withdrew(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        student: Person,
        parents: Sequence[Person] = (),
        *,
        reason: str | None,
        late: bool,
    ) -> int:
        """A student left a group booking that goes on (``session`` no longer lists them): the
        tutor is told (reason, lateness); the student and their linked ``parents`` get the
        calendar event cancelled (SEQUENCE + 1). Reminders are the caller's business."""
        sequence = await calendar_sequence(tx, session.id, bump=True)
        outgoing = messages.withdrawn(
            session, student, parents, reason=reason, late=late, link=self._link
        )
        return await self._emails(tx, session, outgoing, sequence)

    async def session_completed(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        *,
        recap: str,
        minutes: int,
        invoices: Sequence[InvoiceInfo],
        needs_review: bool,
        reminders_pending: bool = True,
    ) -> int:
        """Completed: recap and invoice to each student and linked parent (students are asked to
        review); webhook ``session.completed`` with minutes, amounts and ``needs_review``.
        Pending reminders are withdrawn (``reminders_pending=False``: the caller read in ``tx``
        that there are none)."""
        if reminders_pending:
            await self.cancel_reminders(tx, session.id, "completed")
        outgoing = messages.completed(session, recap=recap, minutes=minutes, invoices=invoices)
        written = await self._emails(tx, session, outgoing, 0)
        data = {
            "minutes": minutes,
            "needs_review": needs_review,
            "tutor_id": session.tutor.user_id,
            "amounts": [
                {
                    "student_id": invoice.student_id,
                    "invoice_id": invoice.invoice_id,
                    "minutes": invoice.minutes,
                    "amount_cents": invoice.amount_cents,
                    "currency": invoice.currency,
                }
                for invoice in invoices
            ],
        }
        await self._event(tx, session.id, "session.completed", data, once=True)
        return written

    async def review_received(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        *,
        student: Person,
        rating: int,
        text: str | None,
    ) -> int:
        """A student rated and reviewed: the tutor is told."""
        outgoing = messages.review_received(session, student=student, rating=rating, text=text)
        return await self._emails(tx, session, outgoing, 0)

    # --- Messages, no-shows, removed students (classroom/notify/absence.py) -----------------

    def _page(self, fragment: str) -> str | None:
        """A link into the web client (``CLASSROOM_PUBLIC_URL`` + ``/#/...``), if configured."""
        return f"{self._link.rstrip('/')}/{fragment}" if self._link else None

    async def message_received(
        self,
        tx: AsyncSession,
        *,
        recipient: Person,
        sender: Person,
        text: str,
        message_id: int,
        conversation_id: str,
        session_id: str | None = None,
    ) -> int:
        """A message for someone with no connected socket: one email, once per message."""
        if not recipient.email:
            log.info("message %s: %s has no email address", message_id, recipient.user_id)
            return 0
        item = absence.message_received(
            recipient=recipient,
            sender=sender,
            text=text,
            message_id=message_id,
            link=self._page(f"#/messages/{conversation_id}"),
        )
        payload = {"to": recipient.email, "to_name": recipient.display_name}
        row_id = await enqueue(
            tx,
            kind=EMAIL,
            topic=item.topic,
            key=item.key,
            payload={**payload, **item.rendered.to_payload()},
            recipient=recipient.email,
            session_id=session_id,
            subject_id=recipient.user_id,
        )
        if row_id is not None:
            self._written(tx)
        return int(row_id is not None)

    async def session_no_show(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        *,
        reason: str,
        absent: Sequence[Person],
        reporter: Person | None = None,
        fees: Sequence[InvoiceInfo] = (),
    ) -> int:
        """Ended as a no-show (``student_no_show`` by the tutor, ``tutor_no_show`` reported by a
        student): everyone is told who did not come, any fee, and how to find a new time. The
        webhook is ``session.missed`` (``session_missed``)."""
        outgoing = absence.no_show(
            session,
            reason=reason,
            absent=absent,
            reporter=reporter,
            fees=fees,
            link=self._page(f"#/sessions/{session.id}"),
        )
        return await self._emails(tx, session, outgoing, 0)

    async def participant_removed(
        self,
        tx: AsyncSession,
        session: SessionInfo,
        *,
        student: Person,
        parents: Sequence[Person] = (),
        reason: str | None = None,
    ) -> int:
        """The tutor removed a student (``session`` no longer lists them): the student and their
        linked parents are told and their calendar event is cancelled (SEQUENCE + 1)."""
        sequence = await calendar_sequence(tx, session.id, bump=True)
        outgoing = absence.removed(
            session,
            student=student,
            parents=parents,
            reason=reason,
            link=self._page(f"#/sessions/{session.id}"),
        )
        return await self._emails(tx, session, outgoing, sequence)

    async def schedule_reminders(self, tx: AsyncSession, session: SessionInfo) -> int:
        """Reminders to everyone at each configured offset before the start (past ones skipped),
        each expiring ``REMINDER_LATE_FRACTION`` of its offset after its time. Idempotent; a
        reschedule or cancellation withdraws them. Returns emails written."""
        sequence = await calendar_sequence(tx, session.id)
        now = self._clock()
        written = 0
        for minutes in self._reminders:
            due = session.starts_at - timedelta(minutes=minutes)
            if due <= now:
                continue
            outgoing = messages.reminder(session, minutes, sequence, self._link)
            expires = due + timedelta(minutes=minutes * REMINDER_LATE_FRACTION)
            written += await self._emails(
                tx, session, outgoing, sequence, deliver_after=due, expires_at=expires
            )
        return written

    async def cancel_reminders(self, tx: AsyncSession, session_id: str, why: str = "") -> int:
        """Withdraw the session's pending reminders (declined, missed, moved, cancelled)."""
        return await cancel_pending(tx, session_id, "reminder", f"withdrawn: {why or 'cancelled'}")

    # --- classroom and lifecycle webhooks -------------------------------------------------

    async def _event(
        self,
        tx: AsyncSession,
        session_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        once: bool,
    ) -> bool:
        if not self._webhooks:
            return False
        key = f"webhook:{event_type}:{session_id}" if once else None
        written = await enqueue_event(
            tx, session_id=session_id, event_type=event_type, data=data, key=key
        )
        if written:
            self._written(tx)
        return written is not None

    async def participant_joined(
        self, tx: AsyncSession, session_id: str, user_id: str, role: str, at: datetime | None = None
    ) -> bool:
        """Webhook ``participant.joined`` (not repeated while the user is already in)."""
        if not self._webhooks:
            return False
        written = await presence_event(
            tx, session_id=session_id, user_id=user_id, role=role, joined=True, at=at
        )
        if written:
            self._written(tx)
        return written is not None

    async def participant_left(
        self,
        tx: AsyncSession,
        session_id: str,
        user_id: str,
        role: str,
        reason: str,
        at: datetime | None = None,
    ) -> bool:
        """Webhook ``participant.left`` with the reason; never without a prior joined."""
        if not self._webhooks:
            return False
        written = await presence_event(
            tx,
            session_id=session_id,
            user_id=user_id,
            role=role,
            joined=False,
            reason=reason,
            at=at,
        )
        if written:
            self._written(tx)
        return written is not None

    async def session_started(
        self, tx: AsyncSession, session_id: str, started_at: datetime
    ) -> bool:
        """Webhook ``session.started`` (once per session)."""
        data = {"started_at": iso(started_at)}
        return await self._event(tx, session_id, "session.started", data, once=True)

    async def session_missed(
        self,
        tx: AsyncSession,
        session_id: str,
        reason: str | None = None,
        state: str = "missed",
    ) -> bool:
        """Webhook ``session.missed`` (once per session) with the reason and the state it went
        to (``missed``, or ``awaiting_support`` when the classroom shows the tutor and a student
        met); pending reminders are withdrawn."""
        await self.cancel_reminders(tx, session_id, "missed")
        data = {"reason": reason, "state": state}
        return await self._event(tx, session_id, "session.missed", data, once=True)
