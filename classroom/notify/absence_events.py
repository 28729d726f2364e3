"""Notifications of the sessions events about absence: a no-show and a removed student, and the
email of a message for someone offline (the messages service's ``OfflineMail``).

``AbsenceEventHandlers`` is mixed into ``SessionEventNotifications`` (``_on_<kind>`` handlers);
``MessageEmails`` is given to the messages service. Both read people from the users table.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from classroom.notify.directory import load_parents, load_person, load_session_info
from classroom.notify.model import InvoiceInfo, Person, SessionEventLike
from classroom.notify.notifier import Notifier

log = logging.getLogger(__name__)


class AbsenceEventHandlers:
    notifier: Notifier

    async def _on_session_no_show(self, tx: AsyncSession, event: SessionEventLike) -> None:
        """data: reason (student_no_show | tutor_no_show), absent [user ids], fees
        [{id, student_id, minutes, amount_cents}]; the actor reported it."""
        info = await load_session_info(tx, event.session_id)
        if info is None:
            return
        data = event.data
        reason = str(data["reason"])
        absent_ids = [str(u) for u in data.get("absent", [])]
        by_id = {p.user_id: p for p in info.everyone()}
        absent = [by_id.get(u) or Person(u, u) for u in absent_ids]
        reporter = by_id.get(event.actor_id or "")
        fees = [
            InvoiceInfo(
                str(f["id"]), str(f["student_id"]), int(f["minutes"]), int(f["amount_cents"])
            )
            for f in data.get("fees", [])
        ]
        await self.notifier.session_no_show(
            tx, info, reason=reason, absent=absent, reporter=reporter, fees=fees
        )

    async def _on_session_participant_removed(
        self, tx: AsyncSession, event: SessionEventLike
    ) -> None:
        """data: student_id, reason. The student and their parents are told; the reminders of
        the people still booked stay, the removed student's go."""
        info = await load_session_info(tx, event.session_id)
        if info is None:
            return
        student_id = str(event.data["student_id"])
        student = await load_person(tx, student_id, "student")
        parents = list(await load_parents(tx, student_id))
        await self.notifier.cancel_reminders(tx, info.id, "a student was removed")
        await self.notifier.participant_removed(
            tx, info, student=student, parents=parents, reason=event.data.get("reason")
        )
        if info.state == "accepted":
            await self.notifier.schedule_reminders(tx, info)


class MessageEmails:
    """The messages service's ``OfflineMail``: an email through the outbox, in the message's
    transaction, for a recipient with no connected socket."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def message_received(
        self,
        tx: AsyncSession,
        *,
        message_id: int,
        conversation_id: str,
        session_id: str | None,
        sender_id: str,
        recipient_id: str,
        text: str,
    ) -> bool:
        sender = await load_person(tx, sender_id, "")
        recipient = await load_person(tx, recipient_id, "")
        written = await self.notifier.message_received(
            tx,
            recipient=recipient,
            sender=sender,
            text=text,
            message_id=message_id,
            conversation_id=conversation_id,
            session_id=session_id,
        )
        return written > 0
