"""What every sessions use case shares: dependencies, the clock, loading and the session view."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.config import Settings
from classroom.db.batch import BatchLoader
from classroom.db.engine import Database
from classroom.errors import ClassroomError, InvalidState, NotAccepted, NotFound
from classroom.messages import store as message_store
from classroom.messages.views import message_view
from classroom.sessions import entry, model, no_show, store, views
from classroom.sessions.events import NoEvents, SessionEvent, SessionEvents
from classroom.sessions.ports import ClassroomGate, Messenger, PresenceSnapshot

log = logging.getLogger("classroom.sessions")
MESSAGES_IN_VIEW = 500  # the session details list what was said during the lesson, up to this


def system_clock() -> datetime:
    return datetime.now(UTC)


class ServiceBase:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        classroom: ClassroomGate,
        clock: Callable[[], datetime] | None = None,
        events: SessionEvents | None = None,
        messenger: Messenger | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._classroom = classroom
        # Public so tests (and the demo) can move time; always returns an aware datetime.
        self.clock: Callable[[], datetime] = clock or system_clock
        self.events: SessionEvents = events or NoEvents()
        self.messenger = messenger  # Messages: the no-show prompt
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Joins read their sessions, and start them, together (classroom.sessions.entry).
        self._entries: BatchLoader[str, entry.Entry] = BatchLoader(
            lambda ids: entry.load_entries(db, ids), name="session-entries"
        )
        self._starts: BatchLoader[tuple[str, str], datetime] = BatchLoader(
            lambda starts: entry.start_sessions(db, self.events, starts, self._now()),
            name="session-starts",
        )

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the sessions clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _lock(self, session_id: str) -> asyncio.Lock:
        """Serialises this process's completions of one session (the database decides across
        processes)."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    async def _emit(self, tx: AsyncSession, event: SessionEvent) -> None:
        await self.events.record(tx, event)

    async def _load(
        self, tx: AsyncSession, identity: Identity, session_id: str, *, for_update: bool = False
    ) -> store.Loaded:
        loaded = await store.load(tx, identity, session_id, for_update=for_update)
        if loaded is None:
            raise NotFound("No such session.")
        return loaded

    def _deadline(self, loaded: store.Loaded, stays: list[model.Stay]) -> datetime:
        return store.deadline(loaded.row, stays, self._settings.logging_window_hours)

    def _situation(
        self, loaded: store.Loaded, stays: list[model.Stay], now: datetime
    ) -> no_show.Situation:
        row = loaded.row
        window = model.classroom_window(
            row.starts_at,
            row.duration_minutes,
            self._settings.classroom_open_before_minutes,
            self._settings.classroom_hard_cap_minutes,
        )
        timing = no_show.timing(
            row.starts_at,
            self._settings.no_show_prompt_minutes,
            self._settings.no_show_end_minutes,
            window.closes_at,
            self._deadline(loaded, stays),
        )
        return no_show.Situation(
            state=row.state,
            mode=row.mode,
            tutor_id=row.tutor_id,
            students=tuple(p.student_id for p in loaded.active),
            attended=no_show.attended(stays),
            now=now,
            timing=timing,
        )

    def _summary(
        self, loaded: store.Loaded, known: dict[str, str], now: datetime, deadline: datetime
    ) -> dict[str, Any]:
        return views.session_summary(
            loaded.row,
            loaded.participants,
            loaded.relation,
            known,
            now,
            self._settings.classroom_open_before_minutes,
            self._settings.classroom_hard_cap_minutes,
            deadline,
        )

    async def _summary_view(
        self, tx: AsyncSession, loaded: store.Loaded, now: datetime
    ) -> dict[str, Any]:
        """The session summary, as lists show it (what the classroom's acks carry): two small
        reads on top of ``loaded``, none of the details."""
        row = loaded.row
        people = [row.tutor_id, row.completed_by or "", row.cancelled_by or ""]
        known = await store.names(tx, people + [p.student_id for p in loaded.participants])
        leaves = await store.last_leaves(tx, [row.id])
        deadline = store.deadline_after(
            row, leaves.get(row.id), self._settings.logging_window_hours
        )
        return self._summary(loaded, known, now, deadline)

    async def get_summary(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """The session summary as ``identity`` may see it; ``not_found`` otherwise."""
        now = self._now()
        async with self._db.reader() as tx:
            return await self._summary_view(tx, await self._load(tx, identity, session_id), now)

    async def _detail(
        self, tx: AsyncSession, loaded: store.Loaded, now: datetime, *, presence: bool = True
    ) -> dict[str, Any]:
        """The session details for ``loaded.relation`` (see docs/api.md, "The session view")."""
        row = loaded.row
        stays = await store.stays(tx, row.id)
        invoices = await store.invoices(tx, row.id)
        reviews = await store.reviews(tx, row.id)
        history = await store.transitions(tx, row.id)
        ids = {row.tutor_id, row.completed_by or "", row.cancelled_by or ""}
        ids |= {p.student_id for p in loaded.participants} | {s.user_id for s in stays}
        ids |= {t.actor_id or "" for t in history}
        known = await store.names(tx, ids)
        deadline = self._deadline(loaded, stays)
        view = self._summary(loaded, known, now, deadline)

        attendance = model.summarise_attendance(stays, now)
        suggested = attendance.suggested_minutes
        if row.mode == "in_person":  # no classroom evidence: suggest the scheduled length
            suggested = model.clamp_minutes(model.round_up_to_step(row.duration_minutes))
        view["attendance"] = views.attendance_view(attendance, known, suggested)

        if loaded.relation == "student" or loaded.relation == "former_student":
            mine: set[str] | None = {loaded.viewer_id}
        elif loaded.relation == "parent":
            mine = set(loaded.children)
        else:
            mine = None
        view["invoices"] = [
            views.invoice_view(i, known, None)
            for i in invoices
            if mine is None or i.student_id in mine
        ]
        view["reviews"] = [views.review_view(r, known) for r in reviews]
        said = await message_store.session_messages(tx, row.id, mine, MESSAGES_IN_VIEW)
        people = await message_store.people(
            tx, {u for m, c in said for u in (c.tutor_id, c.student_id)}
        )
        view["messages"] = [message_view(m, c, people) for m, c in said]
        prompted = sorted({c.student_id for m, c in said if m.kind == "prompt"})
        view["no_show"] = views.no_show_view(
            self._situation(loaded, stays, now),
            loaded.relation,
            loaded.viewer_id,
            prompted,
            self._settings.no_show_fee_percent,
        )
        view["history"] = views.history_view(history, known)
        view["presence"], view["presence_version"] = [], 0
        snapshot: PresenceSnapshot | None = None
        if presence and row.mode == "online":
            snapshot = await self._classroom.snapshot(row.id)
            view["presence"], view["presence_version"] = views.presence_view(snapshot)
        view["can_complete"] = False
        if loaded.relation == "tutor":
            view["can_complete"] = await self._gate_would_pass(loaded, now, deadline, snapshot)
        if loaded.relation in ("tutor", "admin") and row.mode == "online":
            view["media_stats"] = self._classroom.media_stats(row.id)
        return view

    async def get_session(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """The session details as ``identity`` may see them; ``not_found`` otherwise."""
        now = self._now()
        async with self._db.reader() as tx:
            loaded = await self._load(tx, identity, session_id)
            return await self._detail(tx, loaded, now)

    async def _gate_would_pass(
        self,
        loaded: store.Loaded,
        now: datetime,
        deadline: datetime,
        snapshot: PresenceSnapshot | None = None,
    ) -> bool:
        """The tutor could complete right now: every rule passes and (online) nobody else is in."""
        if loaded.relation != "tutor":
            return False
        try:
            check_completion(loaded, False, now, deadline)
        except ClassroomError:
            return False
        if loaded.row.mode != "online":
            return True
        if snapshot is None:
            snapshot = await self._classroom.snapshot(loaded.row.id)
        return not snapshot.others_than(loaded.row.tutor_id)


def check_completion(
    loaded: store.Loaded,
    is_admin: bool,
    now: datetime,
    deadline: datetime,
    minutes: object = None,
    recap: object = None,
) -> tuple[int, str] | None:
    """Every completion rule except the classroom gate, in the order callers are told about
    them: state, acceptance, start, minutes, recap, the logging window (support is exempt).
    With ``minutes`` and ``recap`` given, returns them validated (the recap trimmed)."""
    row = loaded.row
    if is_admin:
        allowed = model.support_may_complete(row.state, row.state_reason)
    else:
        allowed = row.state in model.COMPLETABLE_STATES
    if not allowed:
        if row.state == model.State.REQUESTED:
            raise NotAccepted()
        raise InvalidState(f"A {row.state} session cannot be completed.", state=row.state)
    if not loaded.all_accepted:
        raise NotAccepted()
    if row.state == model.State.ACCEPTED and now < row.starts_at:
        raise InvalidState("The session has not started yet.", state=row.state)
    result: tuple[int, str] | None = None
    if minutes is not None or recap is not None:
        result = (model.validate_minutes(minutes), model.validate_recap(recap))
    model.check_logging_window(now, deadline, is_admin)
    return result
