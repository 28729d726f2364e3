"""From the sessions service's events to notifications, inside the same transaction.

The sessions service tells what happened through ``SessionEvents.record(tx, event)`` (an event has
``kind``, ``session_id``, ``actor_id``, ``at`` and ``data``). ``SessionEventNotifications`` is that
listener: it reads the session as participants see it (``directory.load_session_info``) and calls
the matching ``Notifier`` use case. Nothing here imports the sessions package.

Every kind has a handler (``_on_<kind>``) or is listed in ``IGNORED`` (kinds deliberately
without notifications); a kind in neither is logged as a warning. What each kind sends:

- ``session.requested``: emails to students, linked parents, tutor (invitation)
- ``session.accepted`` / ``session.declined``: email to the tutor; once everyone accepted, the
  reminders are scheduled; a declined booking withdraws them
- ``session.withdrawn``: email to the tutor; the student and their parents get the event cancelled
- ``session.rescheduled``: emails to everyone (updated invitation); reminders withdrawn
- ``session.cancelled``: emails to everyone (cancellation), webhook ``session.cancelled``
- ``session.started``: webhook only; ``session.missed``: webhook only (reminders withdrawn)
- ``session.completed``: emails to students and parents, webhook ``session.completed``
- ``review.created``: email to the tutor
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from classroom.notify.absence_events import AbsenceEventHandlers
from classroom.notify.directory import (
    load_ending_session,
    load_parents,
    load_person,
    load_recap,
    load_review,
    load_session_info,
)
from classroom.notify.model import InvoiceInfo, SessionEventLike, SessionInfo
from classroom.notify.notifier import Notifier

log = logging.getLogger(__name__)


def _when(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class SessionEventNotifications(AbsenceEventHandlers):
    """A ``SessionEvents`` listener that writes the notifications of each event."""

    IGNORED: frozenset[str] = frozenset()  # kinds deliberately without notifications

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    @classmethod
    def handles(cls, kind: str) -> bool:
        """Whether ``kind`` has a handler here."""
        return hasattr(cls, "_on_" + kind.replace(".", "_"))

    async def record(self, tx: AsyncSession, event: SessionEventLike) -> None:
        handler = getattr(self, "_on_" + event.kind.replace(".", "_"), None)
        if handler is None:
            if event.kind not in self.IGNORED:
                log.warning(
                    "session %s: %s has no notification mapped", event.session_id, event.kind
                )
            return
        await handler(tx, event)

    async def _info(self, tx: AsyncSession, event: SessionEventLike) -> SessionInfo | None:
        info = await load_session_info(tx, event.session_id)
        if info is None:
            log.warning("session %s: %s for an unknown session", event.session_id, event.kind)
        return info

    async def _on_session_requested(self, tx: AsyncSession, event: SessionEventLike) -> None:
        if info := await self._info(tx, event):
            await self.notifier.session_requested(tx, info)

    async def _respond(self, tx: AsyncSession, event: SessionEventLike, accepted: bool) -> None:
        info = await self._info(tx, event)
        if info is None:
            return
        student_id = str(event.data["student_id"])
        student = info.student(student_id) or await load_person(tx, student_id, "student")
        await self.notifier.session_responded(tx, info, student, accepted)
        if accepted and event.data.get("all_accepted"):
            await self.notifier.schedule_reminders(tx, info)
        if not accepted and event.data.get("session_declined"):
            await self.notifier.cancel_reminders(tx, info.id, "declined")

    async def _on_session_accepted(self, tx: AsyncSession, event: SessionEventLike) -> None:
        await self._respond(tx, event, accepted=True)

    async def _on_session_declined(self, tx: AsyncSession, event: SessionEventLike) -> None:
        await self._respond(tx, event, accepted=False)

    async def _on_session_withdrawn(self, tx: AsyncSession, event: SessionEventLike) -> None:
        """A student left a group booking: the tutor is told, the student's (and parents')
        calendar event is cancelled; the remaining people's reminders stay, theirs go."""
        info = await self._info(tx, event)
        if info is None:
            return
        student_id = str(event.data["student_id"])
        student = await load_person(tx, student_id, "student")
        parents = await load_parents(tx, student_id)
        await self.notifier.cancel_reminders(tx, info.id, "a student withdrew")
        await self.notifier.student_withdrew(
            tx,
            info,
            student,
            parents,
            reason=event.data.get("reason"),
            late=bool(event.data.get("late")),
        )
        if info.state == "accepted":
            await self.notifier.schedule_reminders(tx, info)

    async def _on_session_rescheduled(self, tx: AsyncSession, event: SessionEventLike) -> None:
        info = await self._info(tx, event)
        if info is None:
            return
        previous = _when(event.data.get("from_starts_at") or info.starts_at)
        await self.notifier.session_rescheduled(tx, info, previous)
        if info.state == "accepted":  # no new acceptance needed: remind at the new time
            await self.notifier.schedule_reminders(tx, info)

    async def _on_session_cancelled(self, tx: AsyncSession, event: SessionEventLike) -> None:
        info = await self._info(tx, event)
        if info is None:
            return
        by_id = event.data.get("by") or event.actor_id
        by = None
        if by_id:
            by = next((p for p in info.everyone() if p.user_id == by_id), None)
            by = by or await load_person(tx, str(by_id), "admin")
        await self.notifier.session_cancelled(
            tx, info, reason=event.data.get("reason"), late=bool(event.data.get("late")), by=by
        )

    async def _on_session_started(self, tx: AsyncSession, event: SessionEventLike) -> None:
        await self.notifier.session_started(tx, event.session_id, event.at)

    async def _on_session_completed(self, tx: AsyncSession, event: SessionEventLike) -> None:
        found = await load_ending_session(tx, event.session_id)
        if found is None:
            log.warning("session %s: %s for an unknown session", event.session_id, event.kind)
            return
        info, reminders_pending = found
        minutes = int(event.data["minutes"])
        invoices = [
            InvoiceInfo(str(i["id"]), str(i["student_id"]), minutes, int(i["amount_cents"]))
            for i in event.data.get("invoices", [])
        ]
        recap = event.data.get("recap")
        if not isinstance(recap, str):
            recap = await load_recap(tx, info.id) or ""
        await self.notifier.session_completed(
            tx,
            info,
            recap=recap,
            minutes=minutes,
            invoices=invoices,
            needs_review=bool(event.data.get("needs_review")),
            reminders_pending=reminders_pending,
        )

    async def _on_session_missed(self, tx: AsyncSession, event: SessionEventLike) -> None:
        data = event.data
        state = str(data.get("state") or "missed")
        await self.notifier.session_missed(tx, event.session_id, data.get("reason"), state)

    async def _on_review_created(self, tx: AsyncSession, event: SessionEventLike) -> None:
        info = await self._info(tx, event)
        if info is None:
            return
        student_id = str(event.data["student_id"])
        rating, text = await load_review(tx, info.id, student_id)
        student = info.student(student_id) or await load_person(tx, student_id, "student")
        await self.notifier.review_received(tx, info, student=student, rating=rating, text=text)
