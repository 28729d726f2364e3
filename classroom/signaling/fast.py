"""The signaling fast path: per-message work of the Socket.IO server made cheap, same wire format.

Everything the classroom does to python-socketio / python-engineio for speed lives here, behind
``CLASSROOM_SIGNALING_FAST`` (default on); ``server_options()`` is what ``create_app`` and the
benchmarks pass to ``socketio.AsyncServer`` and ``install()`` what they apply to it afterwards.

- ``FastPacket`` (``serializer=``): orjson instead of the standard ``json`` module, and no
  ``Packet.data_is_binary()`` walk over every outgoing payload: a payload is taken for text, and
  only when orjson cannot encode it is it checked for bytes (then sent as a binary event, exactly
  as before). Anything orjson refuses that is not binary goes through the standard module, which
  keeps its old behaviour (``TypeError`` for what JSON cannot carry).
- ``inline_emit(manager_class)`` (``client_manager=``): a room emit queues the packet for each
  recipient in turn instead of creating one task per recipient and waiting on them. Composes with
  ``socketio.AsyncRedisManager`` (the pub/sub layer calls it for the local delivery).
- ``install(sio)``: engine.io's aiohttp websocket driver replaced by one that (1) refuses
  permessage-deflate unless configured (aiohttp's ``WebSocketResponse`` accepts it by default:
  four times the memory per client) and (2) reads frames without a task and ``wait_for`` per
  message (``_socket_loop``: engine.io 4.15.1's ``AsyncSocket._websocket_handler`` with the read
  loop changed; private, so the versions are pinned and ``tests/unit/test_signaling_fast_pins.py``
  fails loudly when they change).
- ``GcScheduler``: ``gc.freeze()`` after start-up, raised thresholds, and full collections run in
  quiet moments (after a freeze they stop happening on their own), at the latest every few minutes.
"""

from __future__ import annotations

import asyncio
import gc
import json as stdjson
import logging
import time
from collections.abc import Callable
from typing import Any

import engineio
import orjson
import socketio
from aiohttp import web
from engineio import json as eio_json
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

log = logging.getLogger(__name__)

# The private engine.io code this module replaces was read in these versions (see module doc).
PINNED_ENGINEIO = "4.15.1"
PINNED_SOCKETIO = "5.18.1"

_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class FastJson:
    """A ``json``-module stand-in for Socket.IO packets: orjson, the standard module as fallback."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            return stdjson.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            # NaN/Infinity, integers past 64 bits, invalid text: engine.io's own rules decide.
            return eio_json.loads(text, **kwargs)


class FastPacket(sio_packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet that detects binary payloads only when JSON encoding fails."""

    json = FastJson
    packet_type: int
    data: Any
    namespace: str | None
    id: int | None

    def __init__(
        self,
        packet_type: int = sio_packet.EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: int | None = None,
        binary: bool | None = None,
        encoded_packet: Any = None,
    ) -> None:
        self._detect = binary is None and encoded_packet is None
        super().__init__(
            packet_type,
            data,
            namespace,
            id,
            binary=False if self._detect else binary,
            encoded_packet=encoded_packet,
        )

    def encode(self) -> Any:
        if not self._detect or self.packet_type not in (sio_packet.EVENT, sio_packet.ACK):
            return super().encode()
        try:
            body = None if self.data is None else orjson.dumps(self.data, option=_ORJSON_OPTIONS)
        except TypeError:
            self._detect = False
            if self.data_is_binary(self.data):
                self.packet_type = (
                    sio_packet.BINARY_EVENT
                    if self.packet_type == sio_packet.EVENT
                    else sio_packet.BINARY_ACK
                )
            return super().encode()
        encoded = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            encoded += self.namespace + ","
        if self.id is not None:
            encoded += str(self.id)
        if body is not None:
            encoded += body.decode()
        return encoded


class InlineEmit(socketio.AsyncManager):  # type: ignore[misc]
    """``AsyncManager.emit`` without a task per recipient: packets are queued one after another."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        # Materialise first: a send may close a dead socket, which edits the rooms.
        recipients = [
            (sid, eio_sid)
            for sid, eio_sid in self.get_participants(namespace, room)
            if sid not in skip
        ]
        if not recipients:
            return
        server = self.server
        if not callback:
            encoded = server.packet_class(
                sio_packet.EVENT, namespace=namespace, data=[event, *args]
            ).encode()
            parts = encoded if isinstance(encoded, list) else [encoded]
            eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in parts]
            for _sid, eio_sid in recipients:
                try:
                    for pkt in eio_packets:
                        await server._send_eio_packet(eio_sid, pkt)
                except Exception:
                    log.exception("emit %s to %s failed", event, eio_sid)
            return
        for sid, eio_sid in recipients:
            ack_id = self._generate_ack_id(sid, callback)
            pkt = server.packet_class(
                sio_packet.EVENT, namespace=namespace, data=[event, *args], id=ack_id
            )
            try:
                await server._send_packet(eio_sid, pkt)
            except Exception:
                log.exception("emit %s to %s failed", event, eio_sid)


def inline_emit(manager_class: type[Any]) -> type[Any]:
    """``manager_class`` (an ``AsyncManager`` subclass, e.g. ``AsyncRedisManager``), inline."""
    if issubclass(manager_class, InlineEmit):
        return manager_class
    return type(f"Inline{manager_class.__name__}", (manager_class, InlineEmit), {})


class Activity:
    """Messages read by this process's sockets (the GC scheduler's notion of a quiet moment)."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages = 0


def server_options(*, fast: bool, client_manager: Any = None) -> dict[str, Any]:
    """Keyword arguments for ``socketio.AsyncServer`` (add the application's own to them)."""
    if not fast:
        return {"client_manager": client_manager}
    if client_manager is None:
        client_manager = InlineEmit()
    elif not isinstance(client_manager, InlineEmit):
        raise TypeError("with the fast path, build the client manager with inline_emit(...)")
    return {"serializer": FastPacket, "client_manager": client_manager}


def install(
    sio: socketio.AsyncServer, *, fast: bool, deflate: bool, activity: Activity | None = None
) -> None:
    """Swap in the websocket driver: deflate only when configured; the fast read loop if fast."""
    eio = sio.eio
    drivers = dict(eio._async)
    drivers["websocket"] = _driver(fast=fast, deflate=deflate, activity=activity)
    eio._async = drivers


def _driver(*, fast: bool, deflate: bool, activity: Activity | None) -> Callable[..., Any]:
    def factory(handler: Callable[[Any], Any], server: Any) -> _WebSocket:
        return _WebSocket(handler, server, fast=fast, deflate=deflate, activity=activity)

    return factory


class _WebSocket:
    """engine.io's aiohttp ``WebSocket`` wrapper, with compression and the read loop chosen here."""

    def __init__(
        self,
        handler: Callable[[Any], Any],
        server: Any,
        *,
        fast: bool,
        deflate: bool,
        activity: Activity | None,
    ) -> None:
        self.handler = handler
        self.server = server
        self.environ: dict[str, Any] = {}
        self._fast = fast
        self._deflate = deflate
        self._activity = activity
        self._sock: web.WebSocketResponse | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=self._deflate
        )
        self._sock = sock
        await sock.prepare(request)
        self.environ = environ
        owner = getattr(self.handler, "__self__", None)
        if self._fast and isinstance(owner, AsyncSocket):
            await _socket_loop(owner, self, self._activity)
        else:
            await self.handler(self)
        return sock

    async def close(self) -> None:
        assert self._sock is not None
        await self._sock.close()

    async def send(self, message: str | bytes) -> None:
        assert self._sock is not None
        if isinstance(message, bytes):
            await self._sock.send_bytes(message)
        else:
            await self._sock.send_str(message)

    async def wait(self) -> str | bytes:
        assert self._sock is not None
        msg = await self._sock.receive()
        if not isinstance(msg.data, bytes | str):
            raise OSError()
        return msg.data


async def _socket_loop(socket: Any, ws: _WebSocket, activity: Activity | None) -> None:
    """``AsyncSocket._websocket_handler`` (engine.io 4.15.1) reading without a task per message.

    The original wraps every read in ``ensure_future`` + ``wait_for(ping_interval +
    ping_timeout)``; here one timer per connection watches the same silence limit and cancels the
    read when it passes, re-arming itself while messages keep coming."""
    server = socket.server
    limit = server.ping_interval + server.ping_timeout
    max_size = server.max_http_buffer_size

    if socket.connected:
        # An upgrade from polling: probe, then UPGRADE, exactly as engine.io does.
        socket.upgrading = True
        try:
            pkt = await ws.wait()
        except OSError:
            return
        probe = eio_packet.Packet(encoded_packet=pkt)
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            socket.upgrading = False
            return
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))
        try:
            pkt = await ws.wait()
        except OSError:
            socket.upgrading = False
            return
        if eio_packet.Packet(encoded_packet=pkt).packet_type != eio_packet.UPGRADE:
            socket.upgraded = False
            socket.upgrading = False
            return
        socket.upgraded = True
        socket.upgrading = False
    else:
        socket.connected = True
        socket.upgraded = True

    async def writer() -> None:
        while True:
            try:
                packets = await socket.poll()
            except engineio.exceptions.QueueEmpty:
                break
            if not packets:
                break
            try:
                for out in packets:
                    await ws.send(out.encode())
            except Exception:
                break
        await ws.close()

    writer_task = asyncio.ensure_future(writer())
    loop = asyncio.get_running_loop()
    reader = asyncio.current_task()
    assert reader is not None
    last = loop.time()
    waiting = False
    timed_out = False
    handle: asyncio.TimerHandle | None = None

    def watchdog() -> None:
        nonlocal handle, timed_out
        due = last + limit
        if waiting and loop.time() >= due:
            timed_out = True
            reader.cancel()
            return
        handle = loop.call_at(max(due, loop.time() + 0.05), watchdog)

    handle = loop.call_at(last + limit, watchdog)
    try:
        while True:
            waiting = True
            try:
                data = await ws.wait()
            except asyncio.CancelledError:
                if timed_out:
                    reader.uncancel()
                    break
                raise
            except Exception:
                break
            finally:
                waiting = False
            last = loop.time()
            if data and len(data) > max_size:
                break
            if activity is not None:
                activity.messages += 1
            try:
                await socket.receive(eio_packet.Packet(encoded_packet=data))
            except engineio.exceptions.UnknownPacketError:
                pass
            except engineio.exceptions.SocketIsClosedError:
                break
            except Exception:
                server.logger.exception("Unknown receive error")
    finally:
        if handle is not None:
            handle.cancel()
    await socket.queue.put(None)
    await writer_task
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


class GcScheduler:
    """Frozen start-up heap, rarer young collections, full collections when the process is quiet."""

    def __init__(
        self,
        activity: Activity,
        *,
        thresholds: tuple[int, int, int] = (20_000, 50, 1_000_000),
        check_every: float = 1.0,
        quiet_messages_per_second: float = 20.0,
        min_interval: float = 30.0,
        max_interval: float = 300.0,
    ) -> None:
        self._activity = activity
        self._thresholds = thresholds
        self._check_every = check_every
        self._quiet = quiet_messages_per_second * check_every
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._saved: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.full_collections = 0

    def start(self) -> None:
        if self._task is not None:
            return
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(*self._thresholds)
        self._task = asyncio.create_task(self._run(), name="gc-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
        gc.unfreeze()

    async def _run(self) -> None:
        last_full = time.monotonic()
        seen = self._activity.messages
        while True:
            await asyncio.sleep(self._check_every)
            now = time.monotonic()
            count = self._activity.messages
            quiet = count - seen <= self._quiet
            seen = count
            since = now - last_full
            if (quiet and since >= self._min_interval) or since >= self._max_interval:
                started = time.perf_counter()
                gc.collect()
                last_full = time.monotonic()
                self.full_collections += 1
                log.debug("full collection in %.1f ms", (time.perf_counter() - started) * 1000)


def gc_ctx(scheduler: GcScheduler) -> Callable[[web.Application], Any]:
    """An aiohttp ``cleanup_ctx`` running ``scheduler`` for the application's lifetime."""

    async def ctx(app: web.Application) -> Any:
        scheduler.start()
        yield
        await scheduler.stop()

    return ctx
