"""engine.io's websocket transport on aiohttp, with the per-message costs taken out.

``WebSocketDriver`` replaces engine.io's aiohttp ``WebSocket`` wrapper: permessage-deflate only
when configured (aiohttp accepts it whenever a client asks: four times the memory per client),
and the connection run by ``socket_loop`` instead of ``AsyncSocket._websocket_handler``:

- reading: no task and ``wait_for`` per message; one timer per connection watches the silence
  limit (``ping_interval + ping_timeout``) and cancels the read when it passes. A text MESSAGE
  (``4`` + a Socket.IO packet) or a binary one goes straight to the message handler, without an
  engine.io ``Packet`` and ``AsyncSocket.receive``; every other packet takes engine.io's path.
  While the loop waits, an event the dispatcher takes (``dispatch``) or a pong is handled as
  aiohttp parses it (``inbox``), without waking the loop's task.
- writing, once the websocket carries the connection (uncompressed): ``frames.Direct`` stands in
  for that socket's ``AsyncSocket.send``, after the packets queued before (the OPEN packet,
  anything queued during an upgrade from polling), in order. With compression engine.io's queue
  and writer task stay.

What stays as in engine.io 4.15.1: the upgrade handshake from polling; at the end the remaining
frames, then the websocket close, then ``socket.close(abort=True)``. A socket closed by engine.io
whose client keeps the websocket open is closed after the silence limit (engine.io's writer:
after that long without a packet to send)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import engineio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from classroom.signaling.fast.frames import Direct, Flusher, on_tick
from classroom.signaling.fast.inbox import Response

LATE_WATCHDOG = 0.25  # seconds past its time: the watchdog ran late, the loop was held up


class WebSocketDriver:
    """engine.io's aiohttp ``WebSocket`` wrapper, with compression and the loop chosen here."""

    def __init__(
        self,
        handler: Callable[[Any], Any],
        server: Any,
        *,
        fast: bool,
        deflate: bool,
        activity: Any,
        flusher: Flusher,
        dispatcher: Any = None,
    ) -> None:
        self.handler = handler
        self.server = server
        self.environ: dict[str, Any] = {}
        self._fast = fast
        self._deflate = deflate
        self._activity = activity
        self._flusher = flusher
        self._dispatcher = dispatcher
        self._sock: web.WebSocketResponse | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        response_class = Response if self._fast else web.WebSocketResponse
        sock = response_class(max_msg_size=self.server.max_http_buffer_size, compress=self._deflate)
        self._sock = sock
        await sock.prepare(request)
        self.environ = environ
        owner = getattr(self.handler, "__self__", None)
        if self._fast and isinstance(owner, AsyncSocket):
            await socket_loop(owner, self, self._activity, self._flusher, self._dispatcher)
        else:
            await self.handler(self)
        return sock

    @property
    def response(self) -> web.WebSocketResponse:
        assert self._sock is not None
        return self._sock

    async def close(self) -> None:
        await self.response.close()

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self.response.send_bytes(message)
        else:
            await self.response.send_str(message)

    async def wait(self) -> str | bytes:
        msg = await self.response.receive()
        if not isinstance(msg.data, bytes | str):
            raise OSError()
        return msg.data


async def _upgrade(socket: Any, ws: WebSocketDriver) -> bool:
    """The probe and UPGRADE of a socket coming from polling, exactly as engine.io does them."""
    socket.upgrading = True
    try:
        pkt = await ws.wait()
    except OSError:
        return False
    probe = eio_packet.Packet(encoded_packet=pkt)
    if probe.packet_type != eio_packet.PING or probe.data != "probe":
        socket.upgrading = False
        return False
    await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
    await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))
    try:
        pkt = await ws.wait()
    except OSError:
        socket.upgrading = False
        return False
    if eio_packet.Packet(encoded_packet=pkt).packet_type != eio_packet.UPGRADE:
        socket.upgraded = False
        socket.upgrading = False
        return False
    socket.upgraded = True
    socket.upgrading = False
    return True


async def _deliver(server: Any, on_message: Any, sid: str, data: str | bytes) -> None:
    """``AsyncServer._trigger_event('message', ...)`` as ``AsyncSocket.receive`` calls it."""
    try:
        await on_message(sid, data)
    except asyncio.CancelledError:
        pass
    except Exception:
        server.logger.exception("message async handler error")


def _dispatched(server: Any, dispatcher: Any, sid: str, text: str) -> bool:
    try:
        return bool(dispatcher.event(sid, text))
    except Exception:
        server.logger.exception("message async handler error")
        return True


async def _queued_writer(socket: Any, ws: WebSocketDriver) -> None:
    """engine.io's writer task (kept for compressed websockets)."""
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


async def socket_loop(
    socket: Any, ws: WebSocketDriver, activity: Any, flusher: Flusher, dispatcher: Any = None
) -> None:
    """``AsyncSocket._websocket_handler`` (engine.io 4.15.1), as the module doc describes."""
    server = socket.server
    limit = server.ping_interval + server.ping_timeout
    max_size = server.max_http_buffer_size

    if socket.connected:
        if not await _upgrade(socket, ws):
            return
    else:
        socket.connected = True
        socket.upgraded = True

    direct: Direct | None = None
    writer_task: asyncio.Future[None] | None = None
    transport = ws.environ["aiohttp.request"].transport
    if ws.response.compress or transport is None:
        writer_task = asyncio.ensure_future(_queued_writer(socket, ws))
    else:
        direct = Direct(socket, ws.response, transport, flusher)
        queue = socket.queue
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is not None:
                await direct.send(pkt)
        socket.send = direct.send  # this socket's sends are written from now on
        socket.fast_direct = direct

    on_message = server.handlers.get("message")
    lean = (
        on_message is not None
        and not server.async_handlers
        and asyncio.iscoroutinefunction(on_message)
        and not server.logger.isEnabledFor(logging.INFO)
    )
    sid = socket.sid
    loop = asyncio.get_running_loop()
    reader = asyncio.current_task()
    assert reader is not None
    last = loop.time()
    closed_at: float | None = None
    waiting = False
    expired = False
    handle: asyncio.TimerHandle | None = None

    late_once = False

    def watchdog() -> None:
        nonlocal handle, expired, closed_at, late_once
        now = loop.time()
        due = last + limit
        if socket.closed:
            closed_at = now if closed_at is None else closed_at
            due = min(due, closed_at + limit)
        if now >= due and (waiting or socket.closed):
            if now - due > LATE_WATCHDOG and not late_once:
                # The loop was held up past the limit: what the client sent meanwhile may still
                # be waiting to be read. One more short look before calling it silent.
                late_once = True
                handle = loop.call_at(on_tick(now + 0.1), watchdog)
                return
            expired = True
            if waiting:
                reader.cancel()
            return
        late_once = False
        handle = loop.call_at(on_tick(max(due, now + 0.05)), watchdog)

    handle = loop.call_at(on_tick(last + limit), watchdog)
    receive = ws.response.receive
    clock = time.monotonic  # the clock of asyncio's loop.time()

    def take(text: str) -> bool:
        """A text message read while the loop waits for one: an event the dispatcher takes or
        a pong is handled at once (``inbox`` module), anything else is queued for the loop."""
        nonlocal last
        if not waiting or expired or len(text) > max_size:
            return False
        if text == "3":
            assert direct is not None
            direct.pong()
        elif text[:1] == "4" and text[1:2].isnumeric() and dispatcher is not None:
            flusher.hold()
            try:
                if not dispatcher.event(sid, text[1:]):
                    return False
            finally:
                flusher.release(loop)
        else:
            return False
        last = clock()
        if activity is not None:
            activity.messages += 1
        return True

    inbox = getattr(ws.response, "inbox", None)
    if inbox is not None and lean and direct is not None:
        inbox.take = take
    try:
        while not expired:
            waiting = True
            try:
                data = (await receive()).data
            except asyncio.CancelledError:
                if expired:
                    reader.uncancel()
                    break
                raise
            except Exception:
                break
            finally:
                waiting = False
            last = clock()
            if data.__class__ is str:
                text: str = data
                if len(text) > max_size:
                    break
                if activity is not None:
                    activity.messages += 1
                if lean and text[:1] == "4" and text[1:2].isnumeric():
                    # engine.io's MESSAGE path: AsyncSocket.receive -> AsyncServer._trigger_event
                    if dispatcher is None or not _dispatched(server, dispatcher, sid, text[1:]):
                        await _deliver(server, on_message, sid, text[1:])
                    continue
                if lean and text == "3" and direct is not None:
                    direct.pong()
                    continue
            elif data.__class__ is bytes:
                if len(data) > max_size:
                    break
                if activity is not None:
                    activity.messages += 1
                if lean:
                    await _deliver(server, on_message, sid, data)
                    continue
            else:
                break  # closing, closed or an error: engine.io's wait() raises here
            try:
                await socket.receive(eio_packet.Packet(encoded_packet=data))
            except engineio.exceptions.UnknownPacketError:
                pass
            except engineio.exceptions.SocketIsClosedError:
                break
            except Exception:
                server.logger.exception("Unknown receive error")
    finally:
        if inbox is not None:
            inbox.take = None
        if handle is not None:
            handle.cancel()
    if expired and transport is not None:
        # A silent client never answers the close handshake, and aiohttp's close waits 10 s for
        # it (meanwhile engine.io's monitor closed the socket later, for a late pong).
        transport.abort()
    if writer_task is not None:
        await socket.queue.put(None)
        await writer_task
    else:
        assert direct is not None
        direct.flush()
        await ws.close()
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
