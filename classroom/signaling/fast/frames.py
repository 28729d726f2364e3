"""Writing engine.io packets straight to a websocket, the frames of one loop pass in one write.

Once a websocket carries an engine.io connection (uncompressed), ``Direct.send`` stands in for
that socket's ``AsyncSocket.send``: it writes the frame itself instead of queueing the packet for
engine.io's writer task, and the frames written to one socket during one pass of the event loop
leave in one ``transport.write`` (one ``send()``) at the start of the next pass (``Flusher``).
``send_message`` is the same for a MESSAGE without a packet object (``emit`` uses it). Pings run on
a timer per socket instead of a task each (``pong``).

As in engine.io 4.15.1: ``send`` raises ``SocketIsClosedError`` on a closed socket and closes one
whose pong is late (dropping the packet); a send never waits for the client (engine.io's queue is
unbounded, so is the transport's buffer here). Frames still buffered when a close frame has gone
out are dropped, as engine.io's writer drops them (aiohttp refuses to write after a close)."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import time
from typing import Any

import engineio
from aiohttp import web
from engineio import packet as eio_packet

# Per-connection timers (pings, silence watchdogs) fire on these boundaries, so that the timers
# of many connections due about the same time are run in one wake-up of the process, not one each.
TICK = 0.05


def on_tick(when: float) -> float:
    """``when`` (event loop time) rounded up to the next ``TICK`` boundary."""
    return math.ceil(when / TICK) * TICK


_TEXT = 0x81  # FIN + text opcode
_BINARY = 0x82  # FIN + binary opcode
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack


_SHORT = {first: [bytes((first, size)) for size in range(126)] for first in (_TEXT, _BINARY)}


def _header(first: int, size: int) -> bytes:
    if size < 126:
        return _SHORT[first][size]
    if size < 65536:
        return _LEN16(first, 126, size)
    return _LEN64(first, 127, size)


class Flusher:
    """Sockets written to during this pass of the event loop; their frames go out in the next,
    or at the end of this one when the last callback of the pass wrote them (``hold``)."""

    __slots__ = ("_holding", "_pending", "_scheduled_on")

    def __init__(self) -> None:
        self._pending: list[Direct] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._holding = False

    def add(self, conn: Direct) -> None:
        self._pending.append(conn)
        if self._scheduled_on is not conn.loop and not self._holding:
            self._scheduled_on = conn.loop
            conn.loop.call_soon(self.flush)

    def hold(self) -> None:
        """Frames written from now until ``release`` wait for it to decide when they go."""
        self._holding = True

    def release(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the frames now if nothing else runs in this pass of the loop (asyncio's queue of
        ready callbacks is empty: the next pass would only come after a wait), else schedule
        them for the next pass as usual."""
        self._holding = False
        if not self._pending or self._scheduled_on is loop:
            return
        if not getattr(loop, "_ready", True):
            self.flush()
        else:
            self._scheduled_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._scheduled_on = None
        for conn in pending:
            conn.flush()


class Direct:
    """One engine.io socket's packets written straight to its websocket (see module doc)."""

    __slots__ = (
        "_log",
        "_parts",
        "_spread",
        "flusher",
        "loop",
        "ping_timeout",
        "response",
        "socket",
        "transport",
    )

    def __init__(
        self,
        socket: Any,
        response: web.WebSocketResponse,
        transport: asyncio.Transport,
        flusher: Flusher,
    ) -> None:
        self.socket = socket
        self.response = response
        self.transport = transport
        self.flusher = flusher
        self.loop = asyncio.get_running_loop()
        self.ping_timeout = socket.server.ping_timeout
        self._log = socket.server.logger.isEnabledFor(logging.INFO)
        self._parts: list[bytes] = []
        self._spread = False

    async def send(self, pkt: Any) -> None:
        """``AsyncSocket.send`` (engine.io 4.15.1) of this socket, writing instead of queueing."""
        socket = self.socket
        if socket.closed:
            raise engineio.exceptions.SocketIsClosedError()
        last = socket.last_ping
        if last and time.time() - last > self.ping_timeout:
            # the pong is late: engine.io's check closes the socket and the packet is dropped
            if not await socket.check_ping_timeout():
                return
        encoded = pkt.encode()
        if isinstance(encoded, str):
            self._frame(_TEXT, encoded.encode())
        else:
            self._frame(_BINARY, encoded)
        if self._log:
            socket.server.logger.info(
                "%s: Sending packet %s data %s",
                socket.sid,
                eio_packet.packet_names[pkt.packet_type],
                pkt.data if not isinstance(pkt.data, bytes) else "<binary>",
            )

    def send_message(self, data: str | bytes) -> bool:
        """Write an engine.io MESSAGE now if ``send`` would do nothing else; else ``False``."""
        socket = self.socket
        if socket.closed or self._log:
            return False
        last = socket.last_ping
        if last and time.time() - last > self.ping_timeout:
            return False
        if isinstance(data, str):
            self._frame(_TEXT, b"4" + data.encode())
        else:
            self._frame(_BINARY, data)
        return True

    def pong(self) -> None:
        """``AsyncSocket.receive`` of a PONG: ``schedule_ping``, with ``_send_ping`` a timer.

        The first pong read here schedules the next ping after a random part of the interval
        (10-100%), not all of it: connections that arrived together (the start of the hour)
        would otherwise ping together for as long as they stay, every interval a burst of
        pings and pongs that the messages arriving meanwhile wait behind. An early ping is
        harmless: clients only time out when pings stop coming."""
        socket = self.socket
        if socket.last_ping:
            socket.last_ping = None
            delay = socket.server.ping_interval
            if not self._spread:
                self._spread = True
                delay *= 0.1 + 0.9 * random.random()
            self.loop.call_at(on_tick(self.loop.time() + delay), self._ping)

    def _ping(self) -> None:
        socket = self.socket
        if not socket.closing and not socket.closed:
            socket.last_ping = time.time()
            self._frame(_TEXT, b"2")

    def _frame(self, first: int, payload: bytes) -> None:
        parts = self._parts
        if not parts:
            self.flusher.add(self)
        parts.append(_header(first, len(payload)))
        parts.append(payload)

    def flush(self) -> None:
        parts = self._parts
        if not parts:
            return
        self._parts = []
        if self.response.closed or self.transport.is_closing():
            return  # a close frame has gone out (or is going): nothing may follow it
        self.transport.write(b"".join(parts))
