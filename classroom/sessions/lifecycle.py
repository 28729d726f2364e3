"""A booking's life before completion: accept, decline, cancel, entering the classroom, and the
sweep that closes the books on sessions nobody logged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.tables import Session as SessionRow
from classroom.db.tables import SessionParticipant
from classroom.errors import (
    ClassroomClosed,
    ClassroomError,
    ClassroomNotOpen,
    Forbidden,
    InvalidPayload,
    InvalidState,
    NotAccepted,
    NotAParticipant,
    NotFound,
    Removed,
)
from classroom.sessions import entry, model, store, views
from classroom.sessions.base import ServiceBase
from classroom.sessions.events import SessionEvent

log = logging.getLogger("classroom.sessions")
SWEEP_BATCH = 500


async def _move(
    tx: AsyncSession,
    session_id: str,
    from_state: str,
    to_state: model.State,
    actor_id: str | None,
    now: datetime,
    detail: str | None = None,
    **values: Any,
) -> bool:
    """The conditional state change every use case makes: UPDATE ... WHERE state = from_state,
    plus the transition record. False when someone else moved the session first."""
    model.check_transition(from_state, to_state)
    result = await tx.execute(
        update(SessionRow)
        .where(SessionRow.id == session_id, SessionRow.state == from_state)
        .values(state=to_state.value, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    store.record_transition(tx, session_id, actor_id, from_state, to_state, now, detail)
    return True


class LifecycleUseCases(ServiceBase):
    # -- acceptance ----------------------------------------------------------------------------
    async def accept(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """A booked student accepts; the session is ``accepted`` once every student has."""
        now = self._now()
        async with self._db.transaction() as tx:
            loaded = await self._student_action(tx, identity, session_id)
            row, me = loaded.row, loaded.participant(identity.user_id)
            assert me is not None
            if row.state == model.State.ACCEPTED and me.acceptance == "accepted":
                return await self._detail(tx, loaded, now)  # a repeat
            if row.state != model.State.REQUESTED:
                raise InvalidState(f"A {row.state} session cannot be accepted.", state=row.state)
            if now > self._deadline(loaded, await store.stays(tx, session_id)):
                raise InvalidState("This session's logging window has passed.", state=row.state)
            me.acceptance, me.responded_at = "accepted", now
            everyone = loaded.all_accepted
            if everyone:
                await _move(tx, session_id, row.state, model.State.ACCEPTED, identity.user_id, now)
            await self._emit(
                tx,
                SessionEvent(
                    "session.accepted",
                    session_id,
                    identity.user_id,
                    now,
                    {"student_id": identity.user_id, "all_accepted": everyone},
                ),
            )
        log.info("accepted session=%s student=%s all=%s", session_id, identity.user_id, everyone)
        return await self.get_session(identity, session_id)

    async def decline(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """A booked student declines a requested session. In a group booking they leave it and
        it carries on with the others; otherwise the session is ``declined``."""
        now = self._now()
        async with self._db.transaction() as tx:
            loaded = await self._student_action(tx, identity, session_id, allow_former=True)
            row, me = loaded.row, loaded.participant(identity.user_id)
            assert me is not None
            if me.acceptance == "declined":
                return await self._detail(tx, loaded, now)  # a repeat
            if me.removed:
                raise Forbidden("You are no longer booked on this session.")
            if row.state != model.State.REQUESTED:
                raise InvalidState(
                    f"A {row.state} session cannot be declined; cancel it instead.",
                    state=row.state,
                )
            others = [p for p in loaded.active if p.student_id != identity.user_id]
            me.acceptance, me.responded_at = "declined", now
            if others:
                me.removed = True
                if all(p.acceptance == "accepted" for p in others):
                    await _move(
                        tx, session_id, row.state, model.State.ACCEPTED, identity.user_id, now,
                        "every remaining student accepted",
                    )  # fmt: skip
            else:
                await _move(tx, session_id, row.state, model.State.DECLINED, identity.user_id, now)
            await self._emit(
                tx,
                SessionEvent(
                    "session.declined",
                    session_id,
                    identity.user_id,
                    now,
                    {"student_id": identity.user_id, "session_declined": not others},
                ),
            )
        log.info("declined session=%s student=%s", session_id, identity.user_id)
        return await self.get_session(identity, session_id)

    async def _student_action(
        self, tx: AsyncSession, identity: Identity, session_id: str, allow_former: bool = False
    ) -> store.Loaded:
        loaded = await self._load(tx, identity, session_id, for_update=True)
        if loaded.relation == "student" or (allow_former and loaded.relation == "former_student"):
            return loaded
        raise Forbidden("Only a student booked on the session can answer its request.")

    # -- cancellation --------------------------------------------------------------------------
    async def cancel(
        self, identity: Identity, session_id: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Cancel a booking (tutor, support, or a booked student). Less than 24 hours before the
        start it is recorded as late. A student of a group booking cancels only their place."""
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > model.TEXT_MAX_CHARS:
            raise InvalidPayload(f"reason: at most {model.TEXT_MAX_CHARS} characters.")
        now = self._now()
        async with self._db.transaction() as tx:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            row = loaded.row
            if loaded.relation not in ("tutor", "admin", "student"):
                raise Forbidden("Only the tutor or a booked student can cancel this session.")
            if row.state == model.State.CANCELLED:
                return await self._detail(tx, loaded, now)  # a repeat
            if row.state not in (model.State.REQUESTED, model.State.ACCEPTED):
                raise InvalidState(f"A {row.state} session cannot be cancelled.", state=row.state)
            late = model.is_late_cancellation(now, row.starts_at)
            others = [p for p in loaded.active if p.student_id != identity.user_id]
            if loaded.relation == "student" and others:
                await self._withdraw(tx, loaded, identity, others, reason, late, now)
            else:
                await _move(
                    tx, session_id, row.state, model.State.CANCELLED, identity.user_id, now,
                    "late cancellation" if late else None,
                    cancel_reason=reason, cancelled_late=late, cancelled_by=identity.user_id,
                )  # fmt: skip
                await self._emit(
                    tx,
                    SessionEvent(
                        "session.cancelled",
                        session_id,
                        identity.user_id,
                        now,
                        {"reason": reason, "late": late, "by": identity.user_id},
                    ),
                )
        log.info("cancelled session=%s by=%s late=%s", session_id, identity.user_id, late)
        return await self.get_session(identity, session_id)

    async def _withdraw(
        self,
        tx: AsyncSession,
        loaded: store.Loaded,
        identity: Identity,
        others: list[SessionParticipant],
        reason: str | None,
        late: bool,
        now: datetime,
    ) -> None:
        row, me = loaded.row, loaded.participant(identity.user_id)
        assert me is not None
        me.removed, me.acceptance, me.responded_at = True, "withdrawn", now
        detail = "withdrew" + (" (late)" if late else "") + (f": {reason}" if reason else "")
        if row.state == model.State.REQUESTED and all(p.acceptance == "accepted" for p in others):
            await _move(tx, row.id, row.state, model.State.ACCEPTED, identity.user_id, now, detail)
        else:
            store.record_transition(tx, row.id, identity.user_id, row.state, row.state, now, detail)
        await self._emit(
            tx,
            SessionEvent(
                "session.withdrawn",
                row.id,
                identity.user_id,
                now,
                {"student_id": identity.user_id, "reason": reason, "late": late},
            ),
        )

    # -- the classroom -------------------------------------------------------------------------
    async def enter_classroom(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """Authorise a join of the online classroom and return the session as the classroom needs
        it: the summary every list shows (id, state, tutor, students, topic, schedule, classroom
        window, logging deadline; the tutor's notes), not the details of ``get_session``.

        The first entry of an accepted session starts it (``in_progress``). The tutor entering a
        session that is not accepted marks it ``missed`` (reason ``not_accepted``). Only those two
        changes write (in a transaction shared with the other joins and attendance records
        waiting at the same moment: ``Database.groups``). Every entry is authorised by one read,
        shared with the joins asked for at the same moment (``classroom.sessions.entry``); the
        entries whose session a start of that moment started answer from it, as started."""
        now = self._now()
        loaded, found = await self._entry(identity, session_id)
        for _ in range(3):  # a session moved by someone else between our read and our write
            if not self._may_enter(loaded, now):
                return self._entry_view(loaded, found, now)
            if loaded.row.state == model.State.ACCEPTED:
                started_at = await self._starts.get((session_id, identity.user_id))
                if started_at is not None and found is not None:
                    found.started(started_at)  # as a second read would find it
                    continue
            else:
                refused = await self._db.groups.run(
                    lambda tx: self._missed_at_entry(tx, identity, session_id, now)
                )
                if refused is not None:
                    raise refused  # after the commit: the missed mark stays
            loaded, found = await self._entry(identity, session_id)
        raise InvalidState("The session keeps changing; please try again.")

    async def _entry(
        self, identity: Identity, session_id: str
    ) -> tuple[store.Loaded, entry.Entry | None]:
        """The session as ``identity`` sees it for a join (``not_found`` if they may not)."""
        if identity.role == "parent":  # a parent's relation needs their links: the usual read
            async with self._db.reader() as tx:
                return await self._load(tx, identity, session_id), None
        found = await self._entries.get(session_id) if entry.valid_id(session_id) else None
        loaded = found.loaded(identity) if found is not None else None
        if loaded is None:
            raise NotFound("No such session.")
        return loaded, found

    def _entry_view(
        self, loaded: store.Loaded, found: entry.Entry | None, now: datetime
    ) -> dict[str, Any]:
        """The summary a join answers with. The part every relation sees is rendered once per
        entry (the joins of one session at one moment share it: ``Entry.views``), by what can
        differ between them: the session's state (a start of the moment) and whether the
        classroom is open; the viewer's own part (the tutor's notes) is added to a copy."""
        assert found is not None  # a parent never gets this far: _may_enter refuses them
        row = loaded.row
        settings = self._settings
        window = model.classroom_window(
            row.starts_at,
            row.duration_minutes,
            settings.classroom_open_before_minutes,
            settings.classroom_hard_cap_minutes,
        )
        key = (row.state, views.classroom_open(row, window, now))
        shared = found.views.get(key)
        if shared is None:
            deadline = store.deadline_after(row, found.last_leave, settings.logging_window_hours)
            shared = views.shared_summary(
                row, loaded.participants, found.names, now, window, deadline
            )
            found.views[key] = shared
        return views.for_relation(dict(shared), row, loaded.relation)

    async def _missed_at_entry(
        self, tx: AsyncSession, identity: Identity, session_id: str, now: datetime
    ) -> ClassroomError | None:
        """The tutor entered a requested session: under its row lock, it is marked missed and
        the entry refused (the refusal is returned, to be raised after the commit). None when
        the session moved meanwhile (the caller reads it again)."""
        try:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            if not self._may_enter(loaded, now) or loaded.row.state != model.State.REQUESTED:
                return None
        except ClassroomError as refused:  # this join's answer, not a failure of the group
            return refused
        await self._missed_at_start(tx, loaded.row, identity, now)
        return NotAccepted(
            "The session was started before every participant accepted; it is marked missed.",
            state=model.State.MISSED.value,
        )

    def _may_enter(self, loaded: store.Loaded, now: datetime) -> bool:
        """Raise the refusal of an entry now, if any; True when the entry changes the session
        (an accepted session starts, or the tutor's entry marks a requested one missed)."""
        row = loaded.row
        if loaded.relation not in ("tutor", "student"):
            me = loaded.participant(loaded.viewer_id)
            if me is not None and me.acceptance == "removed":
                raise Removed()
            raise NotAParticipant()
        if row.mode != "online":
            raise InvalidState("An in-person session has no online classroom.")
        window = model.classroom_window(
            row.starts_at,
            row.duration_minutes,
            self._settings.classroom_open_before_minutes,
            self._settings.classroom_hard_cap_minutes,
        )
        if row.state in model.CLOSED_STATES or row.classroom_closed_at is not None:
            raise ClassroomClosed(state=row.state)
        if now >= window.closes_at:
            raise ClassroomClosed("The classroom closed after the session's end.")
        if now < window.opens_at:
            raise ClassroomNotOpen(opens_at=store.iso(window.opens_at))
        if row.state == model.State.REQUESTED:
            if loaded.relation != "tutor":
                raise NotAccepted()
            return True
        return row.state == model.State.ACCEPTED

    async def _missed_at_start(
        self, tx: AsyncSession, row: SessionRow, identity: Identity, now: datetime
    ) -> None:
        moved = await _move(
            tx, row.id, row.state, model.State.MISSED, identity.user_id, now,
            "started before every participant accepted",
            state_reason=model.REASON_NOT_ACCEPTED, classroom_closed_at=now,
        )  # fmt: skip
        if moved:
            await self._emit(
                tx,
                SessionEvent(
                    "session.missed",
                    row.id,
                    identity.user_id,
                    now,
                    {"reason": model.REASON_NOT_ACCEPTED, "state": model.State.MISSED.value},
                ),
            )
            log.info("missed session=%s reason=not_accepted", row.id)

    # -- the sweep -----------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None) -> int:
        """Close the books on sessions whose logging window passed without completion: they
        become ``missed`` (reason ``logging_window_passed``), or ``awaiting_support`` when the
        classroom shows the tutor and a student met. Conditional updates: running it twice, or
        in two processes at once, changes each session once. Returns how many changed."""
        if now is None:
            now = self._now()
        elif now.tzinfo is None:
            raise ValueError("sweep(now=...) needs a timezone-aware datetime")
        horizon = now - timedelta(hours=self._settings.logging_window_hours)
        async with self._db.reader() as tx:
            candidates = list(
                (
                    await tx.execute(
                        select(SessionRow.id)
                        .where(
                            SessionRow.state.in_([s.value for s in model.UNLOGGED_STATES]),
                            SessionRow.starts_at < horizon,
                        )
                        .order_by(SessionRow.starts_at)
                        .limit(SWEEP_BATCH)
                    )
                ).scalars()
            )
        changed = 0
        for session_id in candidates:
            try:
                changed += await self._sweep_one(session_id, now)
            except Exception:
                log.exception("sweep failed session=%s", session_id)
        if changed:
            log.info("sweep: %d session(s) closed without completion", changed)
        return changed

    async def _sweep_one(self, session_id: str, now: datetime) -> int:
        async with self._db.transaction() as tx:
            row = await tx.get(SessionRow, session_id, with_for_update=True)
            if row is None or row.state not in model.UNLOGGED_STATES:
                return 0
            stays = await store.stays(tx, session_id)
            deadline = store.deadline(row, stays, self._settings.logging_window_hours)
            if model.within_logging_window(now, deadline):
                return 0
            met = model.summarise_attendance(stays, now).overlap_seconds > 0
            target = model.State.MISSED
            if met and row.state != model.State.REQUESTED:
                target = model.State.AWAITING_SUPPORT
            moved = await _move(
                tx, session_id, row.state, target, None, now, "logging window passed",
                state_reason=model.REASON_WINDOW_PASSED,
            )  # fmt: skip
            if not moved:
                return 0
            await self._emit(
                tx,
                SessionEvent(
                    "session.missed",
                    session_id,
                    None,
                    now,
                    {"reason": model.REASON_WINDOW_PASSED, "state": target.value},
                ),
            )
        log.info("swept session=%s to=%s", session_id, target.value)
        return 1
