"""Classroom use cases: join, leave, drop and expire, the completion gate, closing a classroom.

Each room's changes are serialised (one lock per classroom in this process; the presence backend
makes each change atomic across processes), recorded in the attendance log, and only then
announced, so the snapshots a client receives never go backwards. What every process must act on
(a closed classroom, who left) also goes out on the ``Cluster`` (``classroom.rooms.cluster``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from classroom.errors import ClassroomClosed, ParticipantsRemain
from classroom.metrics import Metrics
from classroom.rooms.attendance import AttendanceLog
from classroom.rooms.cluster import (
    CLASSROOM_CLOSED,
    PARTICIPANT_REMOVED,
    PRESENCE_CHANGED,
    Cluster,
    LocalCluster,
    Message,
)
from classroom.rooms.model import Change, LeaveReason, Member
from classroom.rooms.ports import PresenceStore
from classroom.sessions.ports import PresenceEntry, PresenceSnapshot

log = logging.getLogger(__name__)

# (session_id, user_id): a participant left through another process (see on_left_elsewhere)
LeftElsewhere = Callable[[str, str], Awaitable[None]]


class RoomListener(Protocol):
    """Who hears about room changes (the Socket.IO namespace, media), while their attendance is
    recorded."""

    async def presence_changed(self, change: Change) -> None: ...

    async def classroom_closed(self, session_id: str, reason: str) -> None: ...


class RoomService:
    """Implements the sessions service's ``ClassroomGate`` on top of a ``PresenceStore``."""

    def __init__(
        self,
        presence: PresenceStore,
        attendance: AttendanceLog,
        metrics: Metrics,
        reconnect_grace: float,
        clock: Callable[[], float] = time.time,
        cluster: Cluster | None = None,
    ) -> None:
        self.presence = presence
        self._attendance = attendance
        self._metrics = metrics
        self._grace = reconnect_grace
        self._clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._listeners: list[RoomListener] = []
        self._media: dict[str, dict[str, str]] = {}  # session -> user -> media connection state
        self._origin = uuid.uuid4().hex
        self._left_elsewhere: list[LeftElsewhere] = []
        self.cluster: Cluster = cluster or LocalCluster()
        self.cluster.subscribe(CLASSROOM_CLOSED, self._closed_here)
        self.cluster.subscribe(PRESENCE_CHANGED, self._changed_elsewhere)
        self._media_stats: Callable[[str], dict[str, dict[str, Any]]] = lambda session_id: {}

    def add_listener(self, listener: RoomListener) -> None:
        self._listeners.append(listener)

    def on_left_elsewhere(self, callback: LeftElsewhere) -> None:
        """Call ``callback(session_id, user_id)`` when a participant left through another process
        (a grace expiry or a sweep there) and is not back: this process's resources for them (the
        room's media, on its home) are released. Never called for changes made here."""
        self._left_elsewhere.append(callback)

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    async def _apply(self, session_id: str, operation: Callable[[], Awaitable[Change]]) -> Change:
        async with self._lock(session_id):
            change = await operation()
            if change.changed:
                await self._after(session_id, change)
            return change

    async def _after(self, session_id: str, change: Change) -> None:
        """Announce the change, then record the attendance (the other participant does not wait
        for the database); both are done before the room's lock is released, so whatever takes
        the lock next (another change, a completion closing the classroom) sees the attendance
        recorded."""
        at = datetime.fromtimestamp(self._clock(), UTC)
        try:
            await self._announce(session_id, change)
        finally:
            # In this task, after the announcement: the record joins its group commit before
            # the first wait (on inline SQLite with the writer free it commits right here), and
            # a cancelled caller does not take it back (the group commit writes it anyway).
            try:
                await self._attendance.record(session_id, change, at)
            except Exception:
                log.exception("attendance not recorded session=%s", session_id)

    async def _announce(self, session_id: str, change: Change) -> None:
        self._metrics.presence_changes.inc()
        for member, reason in change.left:
            log.info("left session=%s user=%s reason=%s", session_id, member.user_id, reason)
        for member in change.joined:
            log.info("joined session=%s user=%s", session_id, member.user_id)
        for listener in self._listeners:
            try:
                await listener.presence_changed(change)
            except Exception:
                log.exception("presence listener failed session=%s", session_id)
        message: Message = {
            "session_id": session_id,
            "version": change.snapshot.version,
            "left": [member.user_id for member, _ in change.left],
            "origin": self._origin,
        }
        try:
            await self.cluster.publish(PRESENCE_CHANGED, message)
        except Exception:
            log.exception("presence change not published session=%s", session_id)

    async def _changed_elsewhere(self, message: Message) -> None:
        left = message.get("left")
        if message.get("origin") == self._origin or not left:
            return
        session_id = str(message["session_id"])
        async with self._lock(session_id):  # no join here can interleave with the check
            present = {p.user_id for p in (await self.presence.snapshot(session_id)).participants}
            for user_id in (str(u) for u in left if u not in present):
                self._cancel_timer(session_id, user_id)
                self.set_media_status(session_id, user_id, None)
                for callback in self._left_elsewhere:
                    try:
                        await callback(session_id, user_id)
                    except Exception:
                        log.exception(
                            "left-elsewhere handler failed session=%s user=%s", session_id, user_id
                        )

    # -- participants --------------------------------------------------------------------------
    async def join(self, session_id: str, member: Member, connection: str) -> PresenceSnapshot:
        """Raises ``ClassroomClosed`` when the classroom was closed (completed or capped)."""
        self._cancel_timer(session_id, member.user_id)
        change = await self._apply(
            session_id, lambda: self.presence.join(session_id, member, connection)
        )
        return change.snapshot

    async def leave(self, session_id: str, user_id: str, connection: str) -> PresenceSnapshot:
        change = await self._apply(
            session_id, lambda: self.presence.leave(session_id, user_id, connection)
        )
        return change.snapshot

    async def drop(
        self, session_id: str, user_id: str, connection: str, dropped_at: float | None = None
    ) -> None:
        """A connection vanished without a clean close: reconnecting, then gone after the grace.

        ``dropped_at`` (wall clock) is when it vanished if earlier than now: the last heartbeat
        of a dead process, whose connections a surviving process drops."""
        deadline = (self._clock() if dropped_at is None else dropped_at) + self._grace
        change = await self._apply(
            session_id, lambda: self.presence.drop(session_id, user_id, connection, deadline)
        )
        if change.reconnecting:
            self._start_timer(session_id, user_id, deadline)

    async def remove(self, session_id: str, user_id: str, reason: LeaveReason) -> None:
        self._cancel_timer(session_id, user_id)
        await self._apply(session_id, lambda: self.presence.remove(session_id, user_id, reason))

    async def remove_participant(self, session_id: str, user_id: str) -> None:
        """The tutor removed a student: out of presence (reason ``removed``), and every process
        takes that user's sockets out of the classroom (``PARTICIPANT_REMOVED``)."""
        await self.remove(session_id, user_id, "removed")
        await self.cluster.publish(
            PARTICIPANT_REMOVED, {"session_id": session_id, "user_id": user_id}
        )

    async def expire(self, session_id: str) -> None:
        await self._apply(session_id, lambda: self.presence.expire(session_id, self._clock()))

    def _start_timer(self, session_id: str, user_id: str, deadline: float) -> None:
        self._cancel_timer(session_id, user_id)
        key = (session_id, user_id)
        delay = max(0.0, deadline - self._clock())
        self._timers[key] = asyncio.create_task(self._expire_later(key, delay), name=f"grace:{key}")

    def _cancel_timer(self, session_id: str, user_id: str) -> None:
        task = self._timers.pop((session_id, user_id), None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _expire_later(self, key: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self.expire(key[0])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("grace expiry failed session=%s user=%s", *key)
        finally:
            if self._timers.get(key) is asyncio.current_task():
                del self._timers[key]

    # -- the completion gate (ClassroomGate) ---------------------------------------------------
    async def close_for_completion(self, session_id: str, tutor_id: str) -> None:
        try:
            await self._apply(
                session_id, lambda: self.presence.close_for_completion(session_id, tutor_id)
            )
        except ParticipantsRemain:
            self._metrics.gate_refusals.inc()
            raise

    async def reopen(self, session_id: str) -> None:
        await self._apply(session_id, lambda: self.presence.reopen(session_id))

    async def media_home(self, session_id: str, node_id: str, url: str) -> str | None:
        """Media affinity: None when ``node_id`` is (now) the classroom's media home — the first
        join, or the home's process died — else the home's public URL."""
        return await self.presence.claim_home(session_id, node_id, url, self._clock())

    async def snapshot(self, session_id: str) -> PresenceSnapshot:
        return self.with_media(await self.presence.snapshot(session_id))

    # -- media detail (this process's media connections) ---------------------------------------
    def use_media_stats(self, provider: Callable[[str], dict[str, dict[str, Any]]]) -> None:
        self._media_stats = provider

    def media_stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        return self._media_stats(session_id)

    def set_media_status(self, session_id: str, user_id: str, status: str | None) -> None:
        states = self._media.setdefault(session_id, {})
        if status is None:
            states.pop(user_id, None)
        else:
            states[user_id] = status
        if not states:
            self._media.pop(session_id, None)

    def with_media(self, snapshot: PresenceSnapshot) -> PresenceSnapshot:
        """The snapshot with each participant's media state, where this process knows it."""
        states = self._media.get(snapshot.session_id)
        if not states:
            return snapshot
        participants = tuple(
            PresenceEntry(p.user_id, p.name, p.role, p.status, states.get(p.user_id))
            for p in snapshot.participants
        )
        return PresenceSnapshot(
            snapshot.session_id, snapshot.version, participants, snapshot.closed
        )

    async def completed(self, session_id: str) -> None:
        """The session was completed: whoever is left (the tutor) leaves and media stops."""
        self._metrics.completions.inc()
        await self.close(session_id, "completed")

    async def close(self, session_id: str, reason: str) -> None:
        """Close the classroom for good (completion): everyone out, joins refused, and every
        process takes its own sockets out and stops the room's media."""
        await self._apply(session_id, lambda: self.presence.close(session_id))
        await self.cluster.publish(CLASSROOM_CLOSED, {"session_id": session_id, "reason": reason})
        log.info("classroom closed session=%s reason=%s", session_id, reason)

    async def close_at_cap(self, session_id: str) -> bool:
        """The hard cap passed. Every process that has sockets in the classroom keeps a timer for
        it; the atomic close lets exactly one of them take the participants out and announce it.
        Returns whether this call did (False: closed already, or nobody was in)."""
        change = await self._apply(session_id, lambda: self.presence.close(session_id))
        if not change.changed:
            return False
        await self.cluster.publish(
            CLASSROOM_CLOSED, {"session_id": session_id, "reason": "hard_cap"}
        )
        log.info("classroom closed session=%s reason=hard_cap", session_id)
        return True

    async def _closed_here(self, message: Message) -> None:
        """On every process: a classroom closed (here or elsewhere)."""
        session_id, reason = str(message["session_id"]), str(message.get("reason", "closed"))
        for key in [k for k in self._timers if k[0] == session_id]:
            self._cancel_timer(*key)
        self._media.pop(session_id, None)
        for listener in self._listeners:
            try:
                await listener.classroom_closed(session_id, reason)
            except Exception:
                log.exception("close listener failed session=%s", session_id)

    async def close_all_timers(self) -> None:
        tasks = list(self._timers.values())
        self._timers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["ClassroomClosed", "RoomListener", "RoomService"]
