"""Completing a session — the one path behind *Complete Session* and *Log time & leave call* —
with its money, exactly once; and the review that follows."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from classroom.auth import Identity
from classroom.db.tables import Invoice, Review, new_id, utcnow
from classroom.db.tables import Session as SessionRow
from classroom.errors import (
    AlreadyCompleted,
    AlreadyReviewed,
    ClassroomError,
    Forbidden,
    InvalidPayload,
    InvalidState,
    NotFound,
)
from classroom.sessions import completion_store, model, store, views
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


@dataclass(frozen=True, slots=True)
class _Done:
    """What the completing transaction read and wrote: the answer is built from it."""

    loaded: store.Loaded  # the row as committed
    known: dict[str, str]  # names of the tutor, students and the completing user
    at: datetime
    last_leave: datetime | None  # as the transaction saw it
    inside: bool  # somebody's stay in the classroom was still open
    invoices: list[Invoice]


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
            done = await self._complete(identity, session_id, minutes, recap)
        if summary:
            if done is not None:  # this call completed it: answered from what it read
                return await self._completed_summary(done)
            return await self.get_summary(identity, session_id)
        return await self.get_session(identity, session_id)

    async def _complete(
        self, identity: Identity, session_id: str, minutes: object, recap: object
    ) -> _Done | None:
        """Complete the session; what the commit saw, or None when it was completed already
        (the same request again, or a concurrent duplicate that won)."""
        now = self._now()
        async with self._db.reader() as tx:
            found = await completion_store.find(tx, identity, session_id)
        if found is None:
            raise NotFound("No such session.")
        loaded = found.loaded
        if loaded.relation not in ("tutor", "admin"):
            raise Forbidden("Only the session's tutor can complete it.")
        if loaded.row.state == model.State.COMPLETED:
            _check_repeat(loaded, minutes, recap)
            return None
        deadline = found.deadline(self._settings.logging_window_hours)
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
            done = await self._commit(identity, session_id, job, now)
        except _LostRace:
            await self._after_lost_race(identity, session_id, job, online)
            return None
        except BaseException:
            if online:
                await asyncio.shield(self._reopen_unless_completed(session_id))
            raise
        log.info(
            "completed session=%s by=%s minutes=%s invoices=%s",
            session_id,
            identity.user_id,
            job.minutes,
            len(done.invoices),
        )
        if online:
            try:
                await self._classroom.completed(session_id)
            except Exception:
                log.exception("classroom not told of the completion session=%s", session_id)
        return done

    async def _commit(
        self, identity: Identity, session_id: str, job: _Completion, now: datetime
    ) -> _Done:
        async with self._db.transaction() as tx:
            locked = await completion_store.lock(tx, identity, session_id)
            if locked is None:
                raise NotFound("No such session.")
            row = locked.loaded.row
            if row.state not in job.allowed_states:
                if row.state == model.State.COMPLETED:
                    raise _LostRace()
                raise InvalidState(f"A {row.state} session cannot be completed.", state=row.state)
            stays = await completion_store.stays(tx, session_id)
            overlap = model.summarise_attendance(stays, now).overlap_seconds
            flagged = row.mode == "online" and model.needs_review(job.minutes, overlap)
            changes: dict[str, Any] = {
                "state": model.State.COMPLETED.value,
                "state_reason": None,
                "logged_minutes": job.minutes,
                "recap": job.recap,
                "needs_review": flagged,
                "completed_at": now,
                "completed_by": identity.user_id,
                "classroom_closed_at": row.classroom_closed_at or now,
                "updated_at": now,
            }
            if not await completion_store.complete(tx, session_id, job.allowed_states, changes):
                raise _LostRace()
            from_state = row.state
            await completion_store.add_transition(
                tx, session_id, identity.user_id, from_state, model.State.COMPLETED, now,
                f"logged {job.minutes} minutes",
            )  # fmt: skip
            rate = locked.rate(self._settings.default_rate_cents)
            invoices = await self._bill(tx, row, locked.loaded.active, job.minutes, now, rate=rate)
            await self._emit(
                tx,
                SessionEvent(
                    "session.completed",
                    session_id,
                    identity.user_id,
                    now,
                    {
                        "minutes": job.minutes,
                        "recap": job.recap,
                        "needs_review": flagged,
                        "invoices": [
                            {"id": i.id, "student_id": i.student_id, "amount_cents": i.amount_cents}
                            for i in invoices
                        ],
                    },
                ),
            )
            for key, value in changes.items():  # the row as committed, for the answer
                set_committed_value(row, key, value)
            inside = any(stay.left_at is None for stay in stays)
            last_leave = store.last_leave(row, stays)
            return _Done(locked.loaded, locked.known, now, last_leave, inside, invoices)

    async def _completed_summary(self, done: _Done) -> dict[str, Any]:
        """The summary ``get_summary`` would answer right after the completion, from what the
        commit read. Closing the classroom recorded the leave of whoever was still in (the
        tutor), at the wall-clock time before ``completed`` returned: that leave can move the
        logging deadline only once the scheduled end has passed, and only then is the last
        leave read again."""
        row = done.loaded.row
        ends_at = model.ends_at(row.starts_at, row.duration_minutes)
        last_leave = done.last_leave
        if done.inside and row.mode == "online" and ends_at < max(self._now(), utcnow()):
            async with self._db.reader() as tx:
                last_leave = await completion_store.last_leave(tx, row)
        deadline = model.logging_deadline(ends_at, last_leave, self._settings.logging_window_hours)
        return self._summary(done.loaded, done.known, done.at, deadline)

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
        rate: int | None = None,
    ) -> list[Invoice]:
        """One invoice per booked student and the ledger entries of every movement: the
        lesson's charge for ``minutes``, or the given ``split`` (a no-show fee). ``rate``: the
        tutor's rate when the caller read it already."""
        if rate is None:
            rate = (await store.profile(tx, row.tutor_id)).rate(self._settings.default_rate_cents)
        if split is None:
            split = model.split_charge(rate, minutes, self._settings.platform_fee_percent)
        invoices = [
            Invoice(
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
            for participant in students
        ]
        charge, earning, fee = split.ledger
        ledger = [
            {
                "account": account,
                "session_id": row.id,
                "invoice_id": invoice.id,
                "kind": entry,
                "amount_cents": amount,
                "created_at": now,
            }
            for invoice in invoices
            for account, entry, amount in (
                (f"student:{invoice.student_id}", "charge", charge),
                (f"tutor:{row.tutor_id}", "earning", earning),
                ("platform", "platform_fee", fee),
            )
        ]
        await completion_store.add_money(tx, invoices, ledger)
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
