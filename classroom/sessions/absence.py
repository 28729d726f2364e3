"""When someone does not come: the tutor prompts an absent student, ends the session as a
no-show (or a student reports that the tutor never came), or removes a student from a group
session so it can be completed for those who came. The attendance record is the evidence."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.tables import Invoice
from classroom.errors import (
    Forbidden,
    InvalidPayload,
    InvalidState,
    LastParticipant,
    NotAParticipant,
    ParticipantsRemain,
    ServiceUnavailable,
    WasPresent,
)
from classroom.messages.model import prompt_text
from classroom.sessions import model, no_show, store
from classroom.sessions.completion import CompletionUseCases
from classroom.sessions.events import SessionEvent
from classroom.sessions.lifecycle import _move

log = logging.getLogger("classroom.sessions")

REMOVED = "removed"  # the acceptance of a student the tutor removed


class AbsenceUseCases(CompletionUseCases):
    # -- Send "Are you joining?" ---------------------------------------------------------------
    async def send_no_show_prompt(
        self, identity: Identity, session_id: str, student_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The tutor sends the prepared *Are you joining?* through Messages to each absent
        student (or ``student_ids``), once per student and session: a repeat answers the
        messages already sent."""
        now = self._now()
        async with self._db.reader() as tx:
            loaded = await self._load(tx, identity, session_id)
            if loaded.relation != "tutor":
                raise Forbidden("Only the session's tutor can prompt an absent student.")
            situation = self._situation(loaded, await store.stays(tx, session_id), now)
            targets = no_show.check_prompt(situation, student_ids)
            known = await store.names(tx, targets)
        if self.messenger is None:
            raise ServiceUnavailable("Messages are not available.")
        client_id = no_show.PROMPT_CLIENT_ID.format(session_id=session_id)
        sent = [
            await self.messenger.send_prepared(
                identity, student_id, session_id, prompt_text(known.get(student_id, "")), client_id
            )
            for student_id in targets
        ]
        log.info("no-show prompt session=%s to=%s", session_id, ",".join(targets))
        return {"session_id": session_id, "messages": sent}

    # -- End as no-show (the tutor) and the tutor's no-show (a student) ------------------------
    async def end_as_no_show(
        self, identity: Identity, session_id: str, student_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The tutor, having waited in the classroom, ends the session as ``missed`` with reason
        ``student_no_show``. Nobody is billed unless ``CLASSROOM_NO_SHOW_FEE_PERCENT`` > 0: then
        each declared student (``student_ids``, default all) pays that share of the scheduled
        time, invoice and ledger in the same transaction. A repeat answers the same view."""
        async with self._lock(session_id):
            now = self._now()
            async with self._db.reader() as tx:
                loaded = await self._load(tx, identity, session_id)
                if loaded.relation != "tutor":
                    raise Forbidden("Only the session's tutor can end it as a no-show.")
                if loaded.row.state_reason == no_show.STUDENT_NO_SHOW:
                    return await self._detail(tx, loaded, now)  # a repeat
                no_show.check_student_no_show(
                    self._situation(loaded, await store.stays(tx, session_id), now), student_ids
                )
            # Nobody may join while it ends: the gate refuses if a student is in right now.
            try:
                await self._classroom.close_for_completion(session_id, loaded.row.tutor_id)
            except ParticipantsRemain:
                snapshot = await self._classroom.snapshot(session_id)
                others = [p.user_id for p in snapshot.others_than(loaded.row.tutor_id)]
                raise WasPresent(user_ids=others) from None
            try:
                await self._record_no_show(
                    identity, session_id, no_show.STUDENT_NO_SHOW, student_ids, now
                )
            except BaseException:
                await self._reopen_unless(session_id, model.State.MISSED)
                raise
        await self._close_classroom(session_id)
        return await self.get_session(identity, session_id)

    async def report_tutor_no_show(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """A booked student who waited in the classroom reports that the tutor never came: the
        session is ``missed`` with reason ``tutor_no_show``; nobody is billed."""
        async with self._lock(session_id):
            now = self._now()
            async with self._db.reader() as tx:
                loaded = await self._load(tx, identity, session_id)
                if loaded.relation not in ("student", "former_student"):
                    raise Forbidden("Only a student booked on the session can report this.")
                if loaded.row.state_reason == no_show.TUTOR_NO_SHOW:
                    return await self._detail(tx, loaded, now)  # a repeat
                no_show.check_tutor_no_show(
                    self._situation(loaded, await store.stays(tx, session_id), now),
                    identity.user_id,
                )
            snapshot = await self._classroom.snapshot(session_id)
            if any(p.user_id == loaded.row.tutor_id for p in snapshot.participants):
                raise WasPresent(user_ids=[loaded.row.tutor_id])
            await self._record_no_show(identity, session_id, no_show.TUTOR_NO_SHOW, None, now)
        await self._close_classroom(session_id)
        return await self.get_session(identity, session_id)

    async def _record_no_show(
        self,
        identity: Identity,
        session_id: str,
        reason: str,
        student_ids: Sequence[str] | None,
        now: datetime,
    ) -> None:
        """One transaction: the checks again under the row lock, the state, the fee (if any),
        the history and the events."""
        async with self._db.transaction() as tx:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            row = loaded.row
            situation = self._situation(loaded, await store.stays(tx, session_id), now)
            if reason == no_show.STUDENT_NO_SHOW:
                absent = no_show.check_student_no_show(situation, student_ids)
            else:
                no_show.check_tutor_no_show(situation, identity.user_id)
                absent = [row.tutor_id]
            known = await store.names(tx, absent)
            detail = "no-show: " + ", ".join(known.get(u, u) for u in absent) + " did not join"
            moved = await _move(
                tx, session_id, row.state, model.State.MISSED, identity.user_id, now, detail,
                state_reason=reason, classroom_closed_at=row.classroom_closed_at or now,
            )  # fmt: skip
            if not moved:
                raise InvalidState("The session changed meanwhile; please try again.")
            fees = await self._charge_no_show(tx, loaded, absent, now) if absent else []
            await self._emit(
                tx,
                SessionEvent(
                    "session.missed",
                    session_id,
                    identity.user_id,
                    now,
                    {"reason": reason, "state": model.State.MISSED.value},
                ),
            )
            await self._emit(
                tx,
                SessionEvent(
                    "session.no_show",
                    session_id,
                    identity.user_id,
                    now,
                    {
                        "reason": reason,
                        "absent": absent,
                        "fees": [
                            {
                                "id": i.id,
                                "student_id": i.student_id,
                                "minutes": i.minutes,
                                "amount_cents": i.amount_cents,
                            }
                            for i in fees
                        ],
                    },
                ),
            )
        log.info("no-show session=%s reason=%s absent=%s", session_id, reason, ",".join(absent))

    async def _charge_no_show(
        self, tx: AsyncSession, loaded: store.Loaded, absent: list[str], now: datetime
    ) -> list[Invoice]:
        """The no-show fee of each absent student, when the policy asks for one."""
        if loaded.row.tutor_id in absent:
            return []
        row = loaded.row
        rate = (await store.profile(tx, row.tutor_id)).rate(self._settings.default_rate_cents)
        split = no_show.fee_split(
            rate,
            row.duration_minutes,
            self._settings.no_show_fee_percent,
            self._settings.platform_fee_percent,
        )
        if split is None:
            return []
        payers = [p for p in loaded.active if p.student_id in absent]
        return await self._bill(
            tx, row, payers, row.duration_minutes, now, split=split, kind="no_show_fee"
        )

    async def _reopen_unless(self, session_id: str, state: model.State) -> None:
        try:
            async with self._db.reader() as tx:
                current = await store.state_of(tx, session_id)
            if current != state:
                await self._classroom.reopen(session_id)
        except Exception:
            log.exception("classroom not reopened session=%s", session_id)

    async def _close_classroom(self, session_id: str) -> None:
        try:
            await self._classroom.close(session_id, "no_show")
        except Exception:
            log.exception("classroom not closed after a no-show session=%s", session_id)

    # -- Remove a participant ------------------------------------------------------------------
    async def remove_participant(
        self, identity: Identity, session_id: str, student_id: str, reason: str | None = None
    ) -> dict[str, Any]:
        """The tutor removes a student from a group session: no longer booked, not billed, not
        blocking completion, out of the classroom and refused if they try to rejoin. The last
        student cannot be removed (``last_participant``): cancel or end as a no-show instead."""
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > model.TEXT_MAX_CHARS:
            raise InvalidPayload(f"reason: at most {model.TEXT_MAX_CHARS} characters.")
        now = self._now()
        async with self._db.transaction() as tx:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            row, target = loaded.row, loaded.participant(student_id)
            if loaded.relation not in ("tutor", "admin"):
                raise Forbidden("Only the session's tutor can remove a student.")
            if target is None:
                raise NotAParticipant("That student is not booked on this session.")
            if target.acceptance == REMOVED:
                return await self._detail(tx, loaded, now)  # a repeat
            if target.removed:
                raise InvalidState("That student already left this session.", state=row.state)
            if row.state not in model.UNLOGGED_STATES:
                raise InvalidState(f"A {row.state} session's students are final.", state=row.state)
            others = [p for p in loaded.active if p.student_id != student_id]
            if not others:
                raise LastParticipant()
            target.removed, target.acceptance = True, REMOVED
            known = await store.names(tx, [student_id])
            detail = f"removed {known.get(student_id, student_id)}" + (
                f": {reason}" if reason else ""
            )
            everyone_accepted = all(p.acceptance == "accepted" for p in others)
            if row.state == model.State.REQUESTED and everyone_accepted:
                await _move(
                    tx, session_id, row.state, model.State.ACCEPTED, identity.user_id, now, detail
                )
            else:
                store.record_transition(
                    tx, session_id, identity.user_id, row.state, row.state, now, detail
                )
            await self._emit(
                tx,
                SessionEvent(
                    "session.participant_removed",
                    session_id,
                    identity.user_id,
                    now,
                    {"student_id": student_id, "reason": reason},
                ),
            )
        log.info("removed session=%s student=%s by=%s", session_id, student_id, identity.user_id)
        if row.mode == "online":
            try:
                await self._classroom.remove_participant(session_id, student_id)
            except Exception:
                log.exception("removed student not taken out session=%s", session_id)
        return await self.get_session(identity, session_id)
