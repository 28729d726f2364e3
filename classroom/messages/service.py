"""Messages use cases: open a conversation, list, read, send (HTTP, the classroom's chat panel,
the no-show prompt), mark read. Commit first, then deliver to connected sockets; a recipient
without one gets an email written in the message's transaction."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import Conversation, Message
from classroom.errors import Forbidden, InvalidPayload, NotAParticipant, NotFound
from classroom.messages import model, store, views
from classroom.messages.ports import LiveDelivery, OfflineMail

log = logging.getLogger(__name__)

Known = dict[str, tuple[str, str]]


def system_clock() -> datetime:
    return datetime.now(UTC)


class MessageService:
    def __init__(self, db: Database, mail: OfflineMail | None = None) -> None:
        self._db = db
        self._mail = mail
        self._live: list[LiveDelivery] = []
        self.clock: Callable[[], datetime] = system_clock  # public: tests move time
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def add_live_delivery(self, live: LiveDelivery) -> None:
        self._live.append(live)

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        """Serialises this process's sends in one conversation, commit and delivery together,
        so connected sockets get its messages in order."""
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    # -- reading -------------------------------------------------------------------------------
    async def _readable(
        self,
        tx: AsyncSession,
        identity: Identity,
        conversation_id: str,
        *,
        for_update: bool = False,
    ) -> tuple[Conversation, model.Relation]:
        conv = await store.conversation(tx, conversation_id, for_update=for_update)
        children = (
            await store.children_of(tx, identity.user_id) if identity.role == "parent" else ()
        )
        relation = None
        if conv is not None:
            relation = model.relation_to(
                identity.user_id, identity.role, children, conv.tutor_id, conv.student_id
            )
        if conv is None or relation is None:
            raise NotFound("No such conversation.")
        return conv, relation

    async def _view(
        self, tx: AsyncSession, identity: Identity, conv: Conversation, relation: model.Relation
    ) -> dict[str, Any]:
        unread = (await store.unread_counts(tx, [conv.id], identity.user_id)).get(conv.id, 0)
        last = None
        if conv.last_message_id is not None:
            last = (await store.messages_by_id(tx, [conv.last_message_id])).get(
                conv.last_message_id
            )
        known = await store.people(tx, [conv.tutor_id, conv.student_id])
        return views.conversation_view(conv, known, relation, unread, last)

    async def list_conversations(self, identity: Identity, limit: int = 100) -> dict[str, Any]:
        """The caller's conversations, latest activity first, with their unread counts."""
        limit = max(1, min(limit, model.LIST_MAX))
        async with self._db.reader() as tx:
            children = (
                await store.children_of(tx, identity.user_id)
                if identity.role == "parent"
                else frozenset()
            )
            where = store.visible(identity.user_id, identity.role, children)
            found = await store.conversations(tx, where, limit)
            # The total counts every conversation, not only the page listed.
            unread = await store.unread_counts(
                tx, await store.conversation_ids(tx, where), identity.user_id
            )
            lasts = await store.messages_by_id(
                tx, [c.last_message_id for c in found if c.last_message_id is not None]
            )
            known = await store.people(tx, [u for c in found for u in (c.tutor_id, c.student_id)])
        items = []
        for conv in found:
            relation = model.relation_to(
                identity.user_id, identity.role, children, conv.tutor_id, conv.student_id
            )
            last = lasts.get(conv.last_message_id) if conv.last_message_id is not None else None
            items.append(
                views.conversation_view(conv, known, relation, unread.get(conv.id, 0), last)
            )
        return {"conversations": items, "unread_total": sum(unread.values())}

    async def list_messages(
        self,
        identity: Identity,
        conversation_id: str,
        before: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """A page of history, oldest first: the latest ``limit`` before ``before``."""
        async with self._db.reader() as tx:
            conv, relation = await self._readable(tx, identity, conversation_id)
            messages, more = await store.page(tx, conv.id, before, model.page_limit(limit))
            view = await self._view(tx, identity, conv, relation)
            known = await store.people(tx, [conv.tutor_id, conv.student_id])
        return {
            "conversation": view,
            "messages": [views.message_view(m, conv, known) for m in messages],
            "has_more": more,
        }

    # -- opening -------------------------------------------------------------------------------
    async def open_conversation(self, identity: Identity, with_id: str) -> dict[str, Any]:
        """The conversation of the caller (tutor or student) with ``with_id``, created on first
        use; only between a tutor and a student the tutor has booked."""
        tutor_id, student_id = model.pair_for(identity.role, identity.user_id, with_id)
        now = self.clock()
        async with self._db.transaction() as tx:
            conv = await store.pair(tx, tutor_id, student_id)
            if conv is None:
                if not await store.share_a_session(tx, tutor_id, student_id):
                    raise Forbidden(
                        "You can message the tutors and students you have sessions with."
                    )
                conv = await store.open_pair(tx, tutor_id, student_id, now)
            relation: model.Relation = "tutor" if identity.role == "tutor" else "student"
            return await self._view(tx, identity, conv, relation)

    # -- sending -------------------------------------------------------------------------------
    async def send_message(
        self,
        identity: Identity,
        conversation_id: str,
        text: object,
        client_id: object = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Send in a conversation (tutor or student); ``session_id``: sent from that session."""
        clean = model.clean_text(text)
        key = model.check_client_id(client_id)
        async with self._db.reader() as tx:
            conv, relation = await self._readable(tx, identity, conversation_id)
            model.check_may_write(relation)
            if session_id is not None:
                await self._check_session(tx, conv.tutor_id, conv.student_id, session_id)
        return await self._post(identity.user_id, conv, clean, "text", key, session_id)

    async def send_in_classroom(
        self,
        identity: Identity,
        session_id: str,
        text: object,
        to: str | None = None,
        client_id: object = None,
    ) -> dict[str, Any]:
        """The classroom's chat panel: to the session's tutor (from a student), or to ``to``
        (from the tutor; optional when one student is booked). The message carries the session."""
        clean = model.clean_text(text)
        key = model.check_client_id(client_id)
        async with self._db.transaction() as tx:
            people = await store.session_people(tx, session_id)
            if people is None:
                raise NotFound("No such session.")
            tutor_id, students = people
            if identity.user_id == tutor_id:
                if to is None and len(students) != 1:
                    raise InvalidPayload("to: say which student the message is for.")
                student_id = to if to is not None else students[0]
                if student_id not in students:
                    raise NotAParticipant("That student is not booked on this session.")
            elif identity.role == "student" and identity.user_id in students:
                if to is not None and to != tutor_id:
                    raise InvalidPayload("to: students write to the session's tutor.")
                student_id = identity.user_id
            else:
                raise NotAParticipant()
            conv = await store.open_pair(tx, tutor_id, student_id, self.clock())
        return await self._post(identity.user_id, conv, clean, "text", key, session_id)

    async def send_prepared(
        self, sender: Identity, student_id: str, session_id: str, text: str, client_id: str
    ) -> dict[str, Any]:
        """A message the server prepared for a tutor (the no-show prompt), once per
        ``client_id``; the caller has checked that tutor and student share the session."""
        async with self._db.transaction() as tx:
            conv = await store.open_pair(tx, sender.user_id, student_id, self.clock())
        return await self._post(sender.user_id, conv, text, "prompt", client_id, session_id)

    async def _check_session(
        self, tx: AsyncSession, tutor_id: str, student_id: str, session_id: str
    ) -> None:
        people = await store.session_people(tx, session_id) if len(session_id) <= 36 else None
        if people is None or people[0] != tutor_id or student_id not in people[1]:
            raise NotAParticipant("session_id: the tutor and the student are not both on it.")

    async def _post(
        self,
        sender_id: str,
        conv: Conversation,
        text: str,
        kind: model.Kind,
        client_id: str | None,
        session_id: str | None,
    ) -> dict[str, Any]:
        recipient = model.counterpart(sender_id, conv.tutor_id, conv.student_id)
        async with self._lock(conv.id):
            online = await self._online([recipient])
            try:
                view, audience, repeat = await self._write(
                    sender_id, conv.id, text, kind, client_id, session_id, recipient not in online
                )
            except IntegrityError:  # a concurrent retry with the same client_id won
                if client_id is None:
                    raise
                view, audience, repeat = await self._write(
                    sender_id, conv.id, text, kind, client_id, session_id, False
                )
            if not repeat:
                await self._deliver("message", view, audience)
        log.info(
            "message conversation=%s id=%s from=%s repeat=%s emailed=%s",
            conv.id,
            view["id"],
            sender_id,
            repeat,
            recipient not in online and not repeat,
        )
        return view

    async def _write(
        self,
        sender_id: str,
        conversation_id: str,
        text: str,
        kind: model.Kind,
        client_id: str | None,
        session_id: str | None,
        email: bool,
    ) -> tuple[dict[str, Any], list[str], bool]:
        now = self.clock()
        async with self._db.transaction() as tx:
            conv = await store.conversation(tx, conversation_id, for_update=True)
            assert conv is not None
            known = await store.people(tx, [conv.tutor_id, conv.student_id])
            audience = [
                conv.tutor_id,
                conv.student_id,
                *await store.parents_of(tx, conv.student_id),
            ]
            if client_id is not None:
                found = await store.by_client_id(tx, conv.id, sender_id, client_id)
                if found is not None:
                    return views.message_view(found, conv, known), audience, True
            message = Message(
                conversation_id=conv.id,
                sender_id=sender_id,
                kind=kind,
                text=text,
                session_id=session_id,
                client_id=client_id,
                created_at=now,
            )
            tx.add(message)
            await tx.flush()
            conv.last_message_id, conv.last_message_at = message.id, now
            await store.mark_read(tx, conv.id, sender_id, message.id, now)
            if email and self._mail is not None:
                await self._mail.message_received(
                    tx,
                    message_id=message.id,
                    conversation_id=conv.id,
                    session_id=session_id,
                    sender_id=sender_id,
                    recipient_id=model.counterpart(sender_id, conv.tutor_id, conv.student_id),
                    text=text,
                )
            return views.message_view(message, conv, known), audience, False

    # -- reading markers -----------------------------------------------------------------------
    async def mark_read(
        self, identity: Identity, conversation_id: str, up_to: int | None = None
    ) -> dict[str, Any]:
        """Everything up to ``up_to`` (default: the latest message) is read by the caller."""
        now = self.clock()
        async with self._db.transaction() as tx:
            conv, _ = await self._readable(tx, identity, conversation_id)
            latest = conv.last_message_id or 0
            target = latest if up_to is None else min(up_to, latest)
            await store.mark_read(tx, conv.id, identity.user_id, target, now)
            marker = await store.last_read(tx, conv.id, identity.user_id)
            unread = (await store.unread_counts(tx, [conv.id], identity.user_id)).get(conv.id, 0)
        result = {"conversation_id": conv.id, "last_read_id": marker, "unread": unread}
        await self._deliver("conversation_read", result, [identity.user_id])
        return result

    # -- live delivery -------------------------------------------------------------------------
    async def _online(self, user_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for live in self._live:
            try:
                found |= await live.online(user_ids)
            except Exception:
                log.exception("online check failed; emailing instead")
        return found

    async def _deliver(self, event: str, payload: dict[str, Any], user_ids: list[str]) -> None:
        for live in self._live:
            try:
                await live.deliver(event, payload, user_ids)
            except Exception:
                log.exception("live delivery of %s failed", event)
