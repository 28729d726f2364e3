"""The ``/classroom`` Socket.IO namespace. Handlers parse, call one service method, and reply.

Rooms used for fan-out: ``session:<id>`` holds the sockets in a classroom, ``watch:<id>`` the
sockets showing that session's details page. Presence snapshots go to both.
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

import socketio

from classroom.auth import Identity, TokenCodec
from classroom.errors import (
    ClassroomError,
    Forbidden,
    InternalError,
    NotInClassroom,
    WrongNode,
)
from classroom.media.port import MediaGateway, MediaStatus, SignalSender
from classroom.metrics import Metrics
from classroom.rooms.cluster import PARTICIPANT_REMOVED, PRESENCE_CHANGED, Message
from classroom.rooms.model import Change, Member
from classroom.rooms.service import RoomService
from classroom.signaling.media_events import MediaSignaling
from classroom.signaling.messages_events import MessagesSignaling
from classroom.signaling.participants_events import ParticipantSignaling
from classroom.signaling.schemas import (
    EmptyPayload,
    JoinPayload,
    LogTimePayload,
    WatchPayload,
    ok,
    parse,
    refusal,
)
from classroom.users.directory import UserDirectory

log = logging.getLogger(__name__)

NAMESPACE = "/classroom"
CLOSE_WAIT_SECONDS = 5.0  # shutdown waits this long at most for disconnects under way
Ack = dict[str, Any]


class ClassroomSessions(Protocol):
    """The part of the sessions service the classroom uses."""

    async def enter_classroom(self, identity: Identity, session_id: str) -> dict[str, Any]: ...

    async def complete_session(
        self,
        identity: Identity,
        session_id: str,
        minutes: int,
        recap: str,
        *,
        summary: bool = False,
    ) -> dict[str, Any]: ...

    async def can_complete(self, identity: Identity, session_id: str) -> bool: ...

    async def get_session(self, identity: Identity, session_id: str) -> dict[str, Any]: ...

    async def remove_participant(
        self, identity: Identity, session_id: str, student_id: str, reason: str | None = None
    ) -> dict[str, Any]: ...


def classroom_room(session_id: str) -> str:
    return f"session:{session_id}"


def watch_room(session_id: str) -> str:
    return f"watch:{session_id}"


def participant_room(session_id: str, user_id: str) -> str:
    return f"participant:{session_id}:{user_id}"


def _closes_at(view: dict[str, Any]) -> datetime | None:
    value = (view.get("classroom") or {}).get("closes_at")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


class ClassroomNamespace(
    MessagesSignaling,
    ParticipantSignaling,
    MediaSignaling,
    socketio.AsyncNamespace,  # type: ignore[misc]
):
    def __init__(
        self,
        tokens: TokenCodec,
        users: UserDirectory,
        metrics: Metrics,
        rooms: RoomService,
        sessions: ClassroomSessions,
        media: MediaGateway | None = None,
    ) -> None:
        super().__init__(NAMESPACE)
        self._tokens = tokens
        self._users = users
        self._metrics = metrics
        self._rooms = rooms
        self._sessions = sessions
        self.node_id = uuid.uuid4().hex[:12]
        self.identities: dict[str, Identity] = {}
        self._joined: dict[str, str] = {}  # sid -> session id of the classroom it is in
        self._watching: dict[str, set[str]] = {}  # sid -> session ids it watches
        self._watchers: dict[str, set[str]] = {}  # session id -> sids watching it
        self._tutors: dict[str, str] = {}  # session id -> tutor id, learned on join/watch
        # session id -> hard-cap timer (a timer per live classroom, not a sleeping task)
        self._caps: dict[str, asyncio.TimerHandle] = {}
        self._capping: set[asyncio.Task[None]] = set()  # hard-cap closes under way
        self._leaving: set[asyncio.Task[None]] = set()  # disconnects updating presence
        self._pushes: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.media = media
        # With media, a classroom's joins go to its media home; others answer ``wrong_node``.
        self.public_url = "http://127.0.0.1"
        rooms.add_listener(self)
        rooms.cluster.subscribe(PRESENCE_CHANGED, self._presence_changed_anywhere)
        rooms.cluster.subscribe(PARTICIPANT_REMOVED, self.participant_removed_here)

    # -- helpers for handlers and mixins -------------------------------------------------------
    def connection_id(self, sid: str) -> str:
        return f"{self.node_id}:{sid}"

    def sender_for(self, session_id: str, user_id: str) -> SignalSender:
        """Emit to every socket of one participant of a classroom (for media negotiation)."""
        room = participant_room(session_id, user_id)

        async def send(event: str, payload: dict[str, Any]) -> None:
            await self.emit(event, payload, room=room)

        return send

    async def media_status_changed(
        self, session_id: str, user_id: str, status: MediaStatus
    ) -> None:
        """A participant's media connection changed state: shown in presence, never a leave."""
        self._rooms.set_media_status(session_id, user_id, status)
        log.info("media session=%s user=%s status=%s", session_id, user_id, status)
        await self.emit(
            "media_status",
            {"session_id": session_id, "user_id": user_id, "status": status},
            room=[classroom_room(session_id), watch_room(session_id)],
        )

    def _ice_servers(self, identity: Identity) -> list[dict[str, Any]]:
        return self.media.ice_servers(identity.user_id) if self.media is not None else []

    def live_classroom_count(self) -> int:
        """Classrooms with at least one participant connected to this process."""
        return len(set(self._joined.values()))

    def current_room(self, sid: str) -> tuple[str, Identity] | None:
        session_id = self._joined.get(sid)
        identity = self.identities.get(sid)
        if session_id is None or identity is None:
            return None
        return session_id, identity

    async def _run(self, event: str, sid: str, work: Callable[[Identity], Awaitable[Ack]]) -> Ack:
        started = time.perf_counter()
        identity = self.identities.get(sid)
        try:
            if identity is None:
                raise Forbidden("Connect with a valid token first.")
            return await work(identity)
        except ClassroomError as exc:
            if event == "join":
                self._metrics.join_refusals.labels(exc.code).inc()
            log.info("refused event=%s sid=%s code=%s", event, sid, exc.code)
            return refusal(exc)
        except Exception:
            log.exception("event %s failed sid=%s", event, sid)
            return refusal(InternalError())
        finally:
            self._metrics.event_latency_of(event).observe(time.perf_counter() - started)

    # -- connection ----------------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._tokens.decode(token)
        except ClassroomError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_dict()) from None
        await self._users.remember(identity)
        self.identities[sid] = identity
        await self.enter_user_room(sid, identity)  # Messages reach the user on any page
        self._metrics.connected_clients.inc()
        log.debug("connected sid=%s user=%s", sid, identity.user_id)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        identity = self.identities.pop(sid, None)
        if identity is None:
            return
        self._metrics.connected_clients.dec()
        for watched in self._watching.pop(sid, set()):
            self._stop_watching(sid, watched)
        session_id = self._joined.pop(sid, None)
        if session_id is None:
            return
        clean = reason == socketio.AsyncServer.reason.CLIENT_DISCONNECT
        log.info(
            "disconnected session=%s user=%s sid=%s reason=%s",
            session_id,
            identity.user_id,
            sid,
            reason,
        )
        # Its own task: a cancelled handler (the connection's request torn down with it) must not
        # leave a ghost behind; shutdown waits for these before closing the presence store.
        update = asyncio.create_task(
            self._left(session_id, identity.user_id, sid, clean), name=f"left:{sid}"
        )
        self._leaving.add(update)
        update.add_done_callback(self._leaving.discard)
        await asyncio.shield(update)

    async def _left(self, session_id: str, user_id: str, sid: str, clean: bool) -> None:
        try:
            if clean:
                await self._rooms.leave(session_id, user_id, self.connection_id(sid))
            else:
                await self._rooms.drop(session_id, user_id, self.connection_id(sid))
        except Exception:
            log.exception("presence update failed on disconnect session=%s", session_id)

    # -- the classroom -------------------------------------------------------------------------
    async def on_join(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(JoinPayload, data)
            session_id = payload.session_id
            current = self._joined.get(sid)
            if current is not None and current != session_id:
                await self._leave(sid, identity, current)
            view = await self._sessions.enter_classroom(identity, session_id)
            self._remember_session(session_id, view)
            if self.media is not None:
                home = await self._rooms.media_home(session_id, self.node_id, self.public_url)
                if home is not None:
                    raise WrongNode(url=home)
            member = Member(identity.user_id, identity.name, identity.role)
            await self.enter_room(sid, classroom_room(session_id))
            await self.enter_room(sid, participant_room(session_id, identity.user_id))
            try:
                snapshot = await self._rooms.join(session_id, member, self.connection_id(sid))
            except Exception:
                await self.leave_room(sid, classroom_room(session_id))
                await self.leave_room(sid, participant_room(session_id, identity.user_id))
                raise
            if sid not in self.identities:
                # The connection went away while the join was in flight: no ghost left behind.
                await self._rooms.drop(session_id, identity.user_id, self.connection_id(sid))
                raise NotInClassroom("The connection closed while joining.")
            self._joined[sid] = session_id
            self._metrics.joins.inc()
            self._watch_cap(session_id, view)
            return ok(
                session=view,
                version=snapshot.version,
                participants=[p.to_dict() for p in self._rooms.with_media(snapshot).participants],
                ice_servers=self._ice_servers(identity),
            )

        return await self._run("join", sid, work)

    async def on_leave_call(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            parse(EmptyPayload, data)
            session_id = self._joined.get(sid)
            if session_id is None:
                return ok(can_complete=False)
            await self._leave(sid, identity, session_id)
            can_complete = False
            if identity.role == "tutor":
                can_complete = await self._sessions.can_complete(identity, session_id)
            return ok(can_complete=can_complete)

        return await self._run("leave_call", sid, work)

    async def on_log_time_and_leave(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(LogTimePayload, data)
            session_id = self._joined.get(sid)
            if session_id is None:
                raise NotInClassroom()
            view = await self._sessions.complete_session(
                identity, session_id, payload.minutes, payload.recap, summary=True
            )
            if self._joined.get(sid) == session_id:
                await self._leave(sid, identity, session_id)
            return ok(session=view)

        return await self._run("log_time_and_leave", sid, work)

    async def _leave(self, sid: str, identity: Identity, session_id: str) -> None:
        self._joined.pop(sid, None)
        await self.leave_room(sid, classroom_room(session_id))
        await self.leave_room(sid, participant_room(session_id, identity.user_id))
        await self._rooms.leave(session_id, identity.user_id, self.connection_id(sid))

    # -- the details page ----------------------------------------------------------------------
    async def on_watch(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(WatchPayload, data)
            view = await self._sessions.get_session(identity, payload.session_id)
            self._remember_session(payload.session_id, view)
            await self.enter_room(sid, watch_room(payload.session_id))
            self._watching.setdefault(sid, set()).add(payload.session_id)
            self._watchers.setdefault(payload.session_id, set()).add(sid)
            snapshot = await self._rooms.snapshot(payload.session_id)
            return ok(
                session=view,
                version=snapshot.version,
                participants=[p.to_dict() for p in snapshot.participants],
                can_complete=bool(view.get("can_complete")),
            )

        return await self._run("watch", sid, work)

    async def on_unwatch(self, sid: str, data: Any = None) -> Ack:
        async def work(identity: Identity) -> Ack:
            payload = parse(WatchPayload, data)
            await self.leave_room(sid, watch_room(payload.session_id))
            self._watching.get(sid, set()).discard(payload.session_id)
            self._stop_watching(sid, payload.session_id)
            return ok()

        return await self._run("unwatch", sid, work)

    def _stop_watching(self, sid: str, session_id: str) -> None:
        sids = self._watchers.get(session_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._watchers[session_id]

    # -- room listener: announce the change (recorded meanwhile) ------------------------------
    async def presence_changed(self, change: Change) -> None:
        snapshot = self._rooms.with_media(change.snapshot)
        payload = snapshot.to_dict()
        await self.emit(
            "presence",
            payload,
            room=[classroom_room(snapshot.session_id), watch_room(snapshot.session_id)],
        )

    async def _presence_changed_anywhere(self, message: Message) -> None:
        """On every process, after a change on any: refresh the tutor's details pages here."""
        await self._push_can_complete(str(message["session_id"]))

    async def _push_can_complete(self, session_id: str) -> None:
        tutor_id = self._tutors.get(session_id)
        if tutor_id is None or session_id not in self._watchers:
            return  # no details page of this session here (the start of the hour: none)
        lock = self._pushes.get(session_id)
        if lock is None:
            lock = self._pushes[session_id] = asyncio.Lock()
        async with lock:  # one at a time, so the last value pushed is the last one read
            pages = [
                (sid, identity)
                for sid in list(self._watchers.get(session_id, ()))
                if (identity := self.identities.get(sid)) is not None
                and identity.user_id == tutor_id
            ]
            if not pages:
                return
            try:  # the same answer for every page of the tutor: read it once
                value = await self._sessions.can_complete(pages[0][1], session_id)
            except ClassroomError:
                value = False
            for sid, _ in pages:
                await self.emit(
                    "can_complete",
                    {"session_id": session_id, "can_complete": value},
                    to=sid,
                    ignore_queue=True,
                )

    async def classroom_closed(self, session_id: str, reason: str) -> None:
        """Runs on every process (the cluster): each tells and takes out its own sockets."""
        cap = self._caps.pop(session_id, None)
        if cap is not None:
            cap.cancel()
        await self.emit(
            "classroom_closed",
            {"session_id": session_id, "reason": reason},
            room=[classroom_room(session_id), watch_room(session_id)],
            ignore_queue=True,
        )
        for sid in [s for s, joined in self._joined.items() if joined == session_id]:
            self._joined.pop(sid, None)
            await self.leave_room(sid, classroom_room(session_id))
            identity = self.identities.get(sid)
            if identity is not None:
                await self.leave_room(sid, participant_room(session_id, identity.user_id))

    # -- the hard cap --------------------------------------------------------------------------
    def _remember_session(self, session_id: str, view: dict[str, Any]) -> None:
        tutor = view.get("tutor") or {}
        if isinstance(tutor, dict) and isinstance(tutor.get("id"), str):
            self._tutors[session_id] = tutor["id"]

    def _watch_cap(self, session_id: str, view: dict[str, Any]) -> None:
        if session_id in self._caps:
            return
        closes_at = _closes_at(view)
        if closes_at is None:
            return
        delay = max(0.0, (closes_at - datetime.now(UTC)).total_seconds())
        self._caps[session_id] = asyncio.get_running_loop().call_later(
            delay, self._cap_reached, session_id
        )

    def _cap_reached(self, session_id: str) -> None:
        self._caps.pop(session_id, None)
        task = asyncio.create_task(self._close_at_cap(session_id), name=f"cap:{session_id}")
        self._capping.add(task)
        task.add_done_callback(self._capping.discard)

    async def _close_at_cap(self, session_id: str) -> None:
        try:
            await self._rooms.close_at_cap(session_id)
        except Exception:
            log.exception("hard cap close failed session=%s", session_id)

    # -- node liveness -------------------------------------------------------------------------
    async def take_new_node_id(self) -> str:
        """The other processes declared this one dead (it stalled past the heartbeat ttl): what
        it held is theirs to clean up. Every local socket is disconnected (clients reconnect and
        join again), this process's media for those classrooms stops, and it goes on under a
        new node id (``NodeLiveness``'s ``on_fenced``)."""
        old, self.node_id = self.node_id, uuid.uuid4().hex[:12]
        log.warning("node fenced, continuing as a new node old=%s node=%s", old, self.node_id)
        classrooms = set(self._joined.values())
        for sid in list(self.identities):
            try:
                await self.server.disconnect(sid, namespace=self.namespace, ignore_queue=True)
            except Exception:
                log.exception("disconnect after fencing failed sid=%s", sid)
        if self.media is not None:
            for session_id in classrooms:
                await self.media.close_room(session_id)
        return self.node_id

    async def close(self) -> None:
        """On shutdown, after the sockets are disconnected: the presence updates of the
        disconnects under way finish (bounded) before the stores they need are closed."""
        if self._leaving:
            await asyncio.wait(list(self._leaving), timeout=CLOSE_WAIT_SECONDS)
        for timer in self._caps.values():
            timer.cancel()
        self._caps.clear()
        tasks = list(self._capping)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
