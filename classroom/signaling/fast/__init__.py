"""The signaling fast path: per-message work of the Socket.IO server made cheap, same wire format.

Everything the classroom does to python-socketio / python-engineio for speed lives here, behind
``CLASSROOM_SIGNALING_FAST`` (default on); ``server_options()`` is what ``create_app`` and the
benchmarks pass to ``socketio.AsyncServer`` and ``install()`` what they apply to it afterwards.

- ``packets``: ``FastPacket`` (``serializer=``): orjson, binary payloads detected only when JSON
  encoding fails, a short decode of the common text event and ack.
- ``emit``: ``InlineEmit`` (``client_manager=``, ``inline_emit(...)`` around another manager
  class): a room emit writes to each recipient in turn, no task per recipient.
- ``dispatch``: an incoming text event goes to its ``on_<event>`` method in one step, in a task
  started eagerly; the server's single-client sends (acks) through the same path as emits.
- ``websocket``: engine.io's websocket transport: deflate only when configured, reading without
  a task per message, MESSAGE packets handed over without engine.io packet objects.
- ``inbox``: while a connection waits for its next message, a text event the dispatcher takes
  or a pong is handled as aiohttp parses it, without waking the connection's task.
- ``frames``: packets written straight to the websocket (no engine.io queue and writer task),
  the frames for one socket in one pass of the event loop sent in one write; pings on timers,
  spread over the interval, on 50 ms ticks.
- ``monitor``: engine.io's client monitor checking sockets in groups on a few ticks a second,
  not one socket per wake-up.
- ``collector``: ``GcScheduler``: ``gc.freeze()`` after start-up, raised thresholds, full
  collections in quiet moments.

Some of this replaces private python-engineio / python-socketio / aiohttp code read in the pinned
versions (below, and ``inbox.PINNED_AIOHTTP``); ``tests/unit/test_signaling_fast_pins.py`` fails
loudly when that code changes.
"""

from __future__ import annotations

import types
from typing import Any

import socketio

from classroom.signaling.fast.collector import Activity, GcScheduler, gc_ctx
from classroom.signaling.fast.dispatch import hook_server
from classroom.signaling.fast.emit import InlineEmit, inline_emit
from classroom.signaling.fast.frames import Flusher
from classroom.signaling.fast.monitor import service_task
from classroom.signaling.fast.packets import FastJson, FastPacket
from classroom.signaling.fast.websocket import WebSocketDriver

__all__ = [
    "PINNED_ENGINEIO",
    "PINNED_SOCKETIO",
    "Activity",
    "FastJson",
    "FastPacket",
    "GcScheduler",
    "InlineEmit",
    "gc_ctx",
    "inline_emit",
    "install",
    "server_options",
]

# The private engine.io / socket.io code this package replaces was read in these versions.
PINNED_ENGINEIO = "4.15.1"
PINNED_SOCKETIO = "5.18.1"


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
    """Swap in the websocket driver (deflate only when configured) and, if fast, the rest."""
    flusher = Flusher()
    dispatcher = hook_server(sio) if fast else None

    def driver(handler: Any, server: Any) -> WebSocketDriver:
        return WebSocketDriver(
            handler,
            server,
            fast=fast,
            deflate=deflate,
            activity=activity,
            flusher=flusher,
            dispatcher=dispatcher,
        )

    eio = sio.eio
    drivers = dict(eio._async)
    drivers["websocket"] = driver
    eio._async = drivers
    if fast:
        eio._service_task = types.MethodType(service_task, eio)
