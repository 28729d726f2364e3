"""create_app(settings): the one place that picks backends and wires the application together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import socketio
from aiohttp import web

from classroom.auth import TokenCodec
from classroom.config import Settings
from classroom.db.engine import Database
from classroom.errors import ServiceUnavailable
from classroom.http import (
    METRICS,
    TOKENS,
    USERS,
    auth_middleware,
    error_middleware,
    json_response,
    metrics_middleware,
)
from classroom.media.port import MediaGateway
from classroom.media.presence import MediaFollowsPresence
from classroom.messages.api import MESSAGES
from classroom.messages.api import add_routes as add_message_routes
from classroom.messages.service import MessageService
from classroom.metrics import CONTENT_TYPE_LATEST, Metrics
from classroom.multinode import Node, shared_backends
from classroom.notify.absence_events import MessageEmails
from classroom.notify.api import add_routes as add_calendar_routes
from classroom.notify.session_events import SessionEventNotifications
from classroom.notify.wiring import install_notifications
from classroom.rooms.attendance import AttendanceLog
from classroom.rooms.liveness import NodeLiveness
from classroom.rooms.service import RoomService
from classroom.sessions.api import SESSIONS
from classroom.sessions.api import add_routes as add_session_routes
from classroom.sessions.service import SessionService, sweep_ctx
from classroom.signaling import fast
from classroom.signaling.fanout import RedisFanout
from classroom.signaling.namespace import ClassroomNamespace
from classroom.users.directory import UserDirectory

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
SIO = web.AppKey("sio", socketio.AsyncServer)
NAMESPACE = web.AppKey("namespace", ClassroomNamespace)
ROOMS = web.AppKey("rooms", RoomService)
MEDIA = web.AppKey("media", MediaGateway)
NODE = web.AppKey("node", Node)
ACTIVITY = web.AppKey("activity", fast.Activity)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings) -> web.Application:
    if not settings.jwt_secret:
        raise ValueError("settings.jwt_secret is required")
    metrics = Metrics()
    app = web.Application(
        middlewares=[error_middleware, metrics_middleware(metrics), auth_middleware],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[TOKENS] = TokenCodec(settings.jwt_secret)
    db = Database(settings.database_url)
    app[DB] = db
    app[USERS] = UserDirectory(db)

    # Notifications: an outbox written in the changes' transactions, delivered by a worker.
    notifier = install_notifications(app, settings, db)
    add_calendar_routes(app, db)

    # The live classroom: presence backend, attendance, the completion gate. With
    # CLASSROOM_REDIS_URL: Redis presence, Socket.IO fan-out and the cluster (classroom/multinode).
    shared = shared_backends(
        settings, fast.inline_emit(RedisFanout) if settings.signaling_fast else RedisFanout
    )
    presence = shared.presence
    rooms = RoomService(
        presence,
        AttendanceLog(db, notifier, groups=db.groups),
        metrics,
        settings.reconnect_grace,
        cluster=shared.fanout,
    )
    app[ROOMS] = rooms

    # Sessions: scheduling, lifecycle, completion, money (classroom/sessions).
    # (wired here: the service takes `rooms` as its ClassroomGate)
    # Messages: tutor–student conversations, live to connected sockets, else by email.
    messages = MessageService(db, mail=MessageEmails(notifier))
    app[MESSAGES] = messages
    add_message_routes(app)

    sessions = SessionService(
        db,
        settings,
        classroom=rooms,
        events=SessionEventNotifications(notifier),
        messenger=messages,
    )
    app[SESSIONS] = sessions
    add_session_routes(app)

    # The signaling fast path (classroom/signaling/fast/, CLASSROOM_SIGNALING_FAST). Another
    # client manager goes through server_options(client_manager=...), its class wrapped in
    # fast.inline_emit(...) when the fast path is on.
    activity = fast.Activity()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=settings.allowed_origins or None,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        http_compression=False,
        compression_threshold=1 << 30,
        logger=False,
        engineio_logger=False,
        **fast.server_options(fast=settings.signaling_fast, client_manager=shared.fanout),
    )
    fast.install(
        sio,
        fast=settings.signaling_fast,
        deflate=settings.websocket_deflate,
        activity=activity,
    )
    app[ACTIVITY] = activity
    namespace = ClassroomNamespace(app[TOKENS], app[USERS], metrics, rooms, sessions)
    namespace.messages = messages  # the classroom's chat panel
    messages.add_live_delivery(namespace)  # each socket is in user:<id>
    namespace.public_url = settings.base_url
    if settings.media_enabled:
        # The only place aiortc enters the application.
        from classroom.media.gateway import AiortcMediaGateway

        media = AiortcMediaGateway(settings, on_status_change=namespace.media_status_changed)
        namespace.media = media
        app[MEDIA] = media
        rooms.add_listener(MediaFollowsPresence(media, namespace.sender_for))
        rooms.on_left_elsewhere(media.close_participant)
        rooms.use_media_stats(media.stats)
        metrics.forwarded_streams.set_function(media.forwarded_stream_count)
    metrics.live_classrooms.set_function(namespace.live_classroom_count)
    sio.register_namespace(namespace)
    sio.attach(app)
    app[SIO] = sio
    app[NAMESPACE] = namespace
    liveness = NodeLiveness(
        presence,
        rooms,
        namespace.node_id,
        interval=settings.heartbeat_interval,
        ttl=settings.heartbeat_ttl,
        on_fenced=namespace.take_new_node_id,
    )
    app[NODE] = Node(shared, liveness, sio)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    _add_web_client(app)

    app.cleanup_ctx.append(_database_ctx)
    lease = shared.sweep_lease
    app.cleanup_ctx.append(
        sweep_ctx(
            lambda: app[SESSIONS],
            settings.sweep_interval_seconds,
            lease.hold if lease is not None else None,
        )
    )
    app.cleanup_ctx.append(_node_ctx)
    app.on_shutdown.append(_close_sockets)
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[DB].close()


async def _node_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[NODE].start()
    yield
    await app[NODE].stop()


async def _close_sockets(app: web.Application) -> None:
    sio = app[SIO]
    for sid in list(app[NAMESPACE].identities):
        await sio.disconnect(sid, namespace=app[NAMESPACE].namespace)
    await app[NAMESPACE].close()
    if MEDIA in app:
        await app[MEDIA].close()
    await app[ROOMS].close_all_timers()
    await app[NODE].stop()  # after the sockets: their drops are published; before the store
    await app[ROOMS].presence.close_store()


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await request.app[DB].ping()
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    checks.update(await request.app[NODE].checks())
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        error = ServiceUnavailable(
            "Not ready: " + ", ".join(k for k, v in checks.items() if v != "ok")
        )
        return json_response({"error": error.to_dict(), "checks": checks}, status=503)
    return json_response({"status": "ready", "checks": checks})


async def metrics_route(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _add_web_client(app: web.Application) -> None:
    if not WEB_DIR.is_dir():
        return
    index = WEB_DIR / "index.html"

    async def index_route(request: web.Request) -> web.FileResponse:
        return web.FileResponse(index)

    app.router.add_get("/", index_route)
    vendor = WEB_DIR / "node_modules" / "socket.io-client" / "dist"
    if vendor.is_dir():
        app.router.add_static("/vendor/socket.io/", vendor)
    app.router.add_static("/static/", WEB_DIR / "src")
