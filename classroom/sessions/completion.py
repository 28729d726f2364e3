"""Completing a session — the one path behind *Complete Session* and *Log time & leave call* —
with its money, exactly once; and the review that follows."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.tables import Invoice, LedgerEntry, Review, new_id
from classroom.db.tables import Session as SessionRow
from classroom.errors import (
    AlreadyCompleted,
    AlreadyReviewed,
    ClassroomError,
    Forbidden,
    InvalidPayload,
    InvalidState,
)
from classroom.sessions import model, store, views
from classroom.sessions.base import ServiceBase, check_completion
from classroom.sessions.events import SessionEvent

log = logging.getLogger("classroom.sessions")


class _LostRace(Exception):
    """The conditional update matched nothing: someone else changed the session first."""


@dataclass(frozen=True, slots=True)
class _Completion:
    minutes: int
    recap: str
    actor: Identity
    allowed_states: tuple[str, ...]


class CompletionUseCases(ServiceBase):
    async def complete_session(
        self,
        identity: Identity,
        session_id: str,
        minutes: int,
        recap: str,
        *,
        summary: bool = False,
    ) -> dict[str, Any]:
        """Log time and recap, bill every student and pay the tutor, exactly once.

        Raises ``not_found``, ``forbidden``, ``invalid_state``, ``not_accepted``,
        ``invalid_minutes``, ``recap_too_short``, ``grace_period_expired``,
        ``participants_remain`` (online, someone else is still in the classroom) or
        ``already_completed`` (completed before with another time or recap). A repeat of the
        completing request answers the same session view. Answers the session details, or with
        ``summary`` the session summary (the classroom's ``log_time_and_leave`` ack)."""
        async with self._lock(session_id):
            await self._complete(identity, session_id, minutes, recap)
        if summary:
            return await self.get_summary(identity, session_id)
        return await self.get_session(identity, session_id)

    async def _complete(
        self, identity: Identity, session_id: str, minutes: object, recap: object
    ) -> None:
        now = self._now()
        async with self._db.reader() as tx:
            loaded = await self._load(tx, identity, session_id)
            if loaded.relation not in ("tutor", "admin"):
                raise Forbidden("Only the session's tutor can complete it.")
            if loaded.row.state == model.State.COMPLETED:
                _check_repeat(loaded, minutes, recap)
                return
            deadline = self._deadline(loaded, await store.stays(tx, session_id))
            checked = check_completion(loaded, identity.is_admin, now, deadline, minutes, recap)
            assert checked is not None
        states = model.SUPPORT_COMPLETABLE_STATES if identity.is_admin else model.COMPLETABLE_STATES
        allowed = tuple(sorted(s.value for s in states))
        job = _Completion(checked[0], checked[1], identity, allowed)
        online = loaded.row.mode == "online"
        tutor_id = loaded.row.tutor_id
        if online:
            await self._classroom.close_for_completion(session_id, tutor_id)
        try:
            invoices = await self._commit(identity, session_id, job, now)
        except _LostRace:
            await self._after_lost_race(identity, session_id, job, online)
            return
        except BaseException:
            if online:
                await asyncio.shield(self._reopen_unless_completed(session_id))
            raise
        log.info(
            "completed session=%s by=%s minutes=%s invoices=%s",
            session_id,
            identity.user_id,
            job.minutes,
            len(invoices),
        )
        if online:
            try:
                await self._classroom.completed(session_id)
            except Exception:
                log.exception("classroom not told of the completion session=%s", session_id)

    async def _commit(
        self, identity: Identity, session_id: str, job: _Completion, now: datetime
    ) -> list[Invoice]:
        async with self._db.transaction() as tx:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            row = loaded.row
            if row.state not in job.allowed_states:
                if row.state == model.State.COMPLETED:
                    raise _LostRace()
                raise InvalidState(f"A {row.state} session cannot be completed.", state=row.state)
            stays = await store.stays(tx, session_id)
            overlap = model.summarise_attendance(stays, now).overlap_seconds
            flagged = row.mode == "online" and model.needs_review(job.minutes, overlap)
            result = await tx.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.state.in_(job.allowed_states))
                .values(
                    state=model.State.COMPLETED.value,
                    state_reason=None,
                    logged_minutes=job.minutes,
                    recap=job.recap,
                    needs_review=flagged,
                    completed_at=now,
                    completed_by=identity.user_id,
                    classroom_closed_at=row.classroom_closed_at or now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise _LostRace()
            store.record_transition(
                tx, session_id, identity.user_id, row.state, model.State.COMPLETED, now,
                f"logged {job.minutes} minutes",
            )  # fmt: skip
            invoices = await self._bill(tx, row, loaded.active, job.minutes, now)
            await self._emit(
                tx,
                SessionEvent(
                    "session.completed",
                    session_id,
                    identity.user_id,
                    now,
                    {
                        "minutes": job.minutes,
                        "needs_review": flagged,
                        "invoices": [
                            {"id": i.id, "student_id": i.student_id, "amount_cents": i.amount_cents}
                            for i in invoices
                        ],
                    },
                ),
            )
            return invoices

    async def _bill(
        self,
        tx: AsyncSession,
        row: SessionRow,
        students: list[Any],
        minutes: int,
        now: datetime,
        *,
        split: model.Split | None = None,
        kind: str = "lesson",
    ) -> list[Invoice]:
        """One invoice per booked student and the ledger entries of every movement: the
        lesson's charge for ``minutes``, or the given ``split`` (a no-show fee)."""
        rate = (await store.profile(tx, row.tutor_id)).rate(self._settings.default_rate_cents)
        if split is None:
            split = model.split_charge(rate, minutes, self._settings.platform_fee_percent)
        invoices: list[Invoice] = []
        for participant in students:
            invoice = Invoice(
                id=new_id(),
                session_id=row.id,
                student_id=participant.student_id,
                tutor_id=row.tutor_id,
                minutes=minutes,
                rate_cents=rate,
                amount_cents=split.amount_cents,
                fee_cents=split.fee_cents,
                kind=kind,
                created_at=now,
            )
            tx.add(invoice)
            invoices.append(invoice)
        await tx.flush()  # invoices first: the ledger refers to them
        for invoice in invoices:
            charge, earning, fee = split.ledger
            for account, kind, amount in (
                (f"student:{invoice.student_id}", "charge", charge),
                (f"tutor:{row.tutor_id}", "earning", earning),
                ("platform", "platform_fee", fee),
            ):
                tx.add(
                    LedgerEntry(
                        account=account,
                        session_id=row.id,
                        invoice_id=invoice.id,
                        kind=kind,
                        amount_cents=amount,
                        created_at=now,
                    )
                )
        return invoices

    async def _after_lost_race(
        self, identity: Identity, session_id: str, job: _Completion, online: bool
    ) -> None:
        """Another request changed the session between our checks and our update."""
        async with self._db.reader() as tx:
            loaded = await self._load(tx, identity, session_id)
            if loaded.row.state == model.State.COMPLETED:
                _check_repeat(loaded, job.minutes, job.recap)
                return
        if online:
            await self._reopen_unless_completed(session_id)
        raise InvalidState("The session changed meanwhile; please try again.")

    async def _reopen_unless_completed(self, session_id: str) -> None:
        """Undo the gate's close, unless the session is completed after all (a concurrent
        duplicate that lost must never reopen a completed classroom)."""
        try:
            async with self._db.reader() as tx:
                state = await tx.scalar(select(SessionRow.state).where(SessionRow.id == session_id))
        except Exception:
            log.exception("completion failed; classroom left closed session=%s", session_id)
            return
        if state == model.State.COMPLETED:
            return
        try:
            await self._classroom.reopen(session_id)
            log.info("completion not recorded; classroom reopened session=%s", session_id)
        except Exception:
            log.exception("classroom not reopened session=%s", session_id)

    async def can_complete(self, identity: Identity, session_id: str) -> bool:
        """Whether ``identity`` (the session's tutor) could complete it right now."""
        now = self._now()
        try:
            async with self._db.reader() as tx:
                loaded = await self._load(tx, identity, session_id)
                deadline = self._deadline(loaded, await store.stays(tx, session_id))
        except ClassroomError:
            return False
        return await self._gate_would_pass(loaded, now, deadline)

    async def review_session(
        self, identity: Identity, session_id: str, rating: int, text: str | None
    ) -> dict[str, Any]:
        """A student of a completed session rates it 1..5, once."""
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidPayload("rating: a whole number from 1 to 5.")
        text = (text or "").strip() or None
        if text is not None and len(text) > model.TEXT_MAX_CHARS:
            raise InvalidPayload(f"text: at most {model.TEXT_MAX_CHARS} characters.")
        now = self._now()
        try:
            async with self._db.transaction() as tx:
                loaded = await self._load(tx, identity, session_id)
                if loaded.relation != "student":
                    raise Forbidden("Only a student of the session can review it.")
                if loaded.row.state != model.State.COMPLETED:
                    raise InvalidState("Only a completed session can be reviewed.")
                existing = await tx.scalar(
                    select(Review.id).where(
                        Review.session_id == session_id, Review.student_id == identity.user_id
                    )
                )
                if existing is not None:
                    raise AlreadyReviewed()
                review = Review(
                    id=new_id(),
                    session_id=session_id,
                    student_id=identity.user_id,
                    tutor_id=loaded.row.tutor_id,
                    rating=rating,
                    text=text,
                    created_at=now,
                )
                tx.add(review)
                await tx.flush()
                await self._emit(
                    tx,
                    SessionEvent(
                        "review.created",
                        session_id,
                        identity.user_id,
                        now,
                        {"student_id": identity.user_id, "rating": rating},
                    ),
                )
                known = await store.names(tx, [identity.user_id, loaded.row.tutor_id])
        except IntegrityError:
            raise AlreadyReviewed() from None
        log.info("reviewed session=%s by=%s rating=%s", session_id, identity.user_id, rating)
        return views.review_view(review, known)


def _check_repeat(loaded: store.Loaded, minutes: object, recap: object) -> None:
    """An already completed session: the same request again is answered the same way (the
    caller answers the view); another time or recap is ``already_completed``."""
    row = loaded.row
    same = (
        isinstance(recap, str)
        and not isinstance(minutes, bool)
        and minutes == row.logged_minutes
        and recap.strip() == row.recap
    )
    if not same:
        raise AlreadyCompleted(logged_minutes=row.logged_minutes)


__all__ = ["CompletionUseCases"]
