"""aiohttp's websocket response, its received text messages offered to a handler first.

aiohttp parses frames in ``data_received`` and puts each message in a queue, waking the task that
waits on ``receive()``: a future, a task step and ``receive()``'s own frames per message. With
``Response`` the queue (``Inbox``) first offers a text message to ``take``, when one is set and
no message waits in the queue before it (order is kept: a message is only taken while the queue
is empty, and ``take`` only takes one while the reading task waits for the next). A message
``take`` handles is not queued, and the reading task is not woken for it.

``Response._post_start`` is aiohttp 3.14.5's with the queue class changed; ``Inbox`` subclasses
aiohttp's compiled ``WebSocketDataQueue`` (its ``feed_data`` is a ``cpdef`` method, so the
parser calls the override). Both are private: aiohttp's version and the source are pinned in
tests/unit/test_signaling_fast_pins.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

log = logging.getLogger(__name__)

PINNED_AIOHTTP = "3.14.5"

_TEXT = WSMsgType.TEXT


class Inbox(WebSocketDataQueue):
    """aiohttp's queue of received messages, offering text messages to ``take`` first."""

    take: Callable[[str], bool] | None = None

    def feed_data(self, data: Any, size: int) -> None:
        take = self.take
        if take is not None and data[0] is _TEXT and not self._buffer:
            try:
                if take(data[1]):
                    return
            except Exception:
                log.exception("websocket message handler failed")
                return
        WebSocketDataQueue.feed_data(self, data, size)


class Response(web.WebSocketResponse):
    """``web.WebSocketResponse`` with an ``Inbox`` for its queue of received messages."""

    inbox: Inbox | None = None

    def _post_start(self, request: Any, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer

        self._reset_heartbeat()

        loop = self._loop
        assert loop is not None
        self._reader = self.inbox = Inbox(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        # Owns the parser so a stalled reader parked on the queue by weakref
        # stays alive while this response can still be drained.
        self._parser = WebSocketReader(
            self._reader,
            self._max_msg_size,
            compress=bool(self._compress),
            decode_text=self._decode_text,
        )
        cb = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=cb)
        # disable HTTP keepalive for WebSocket
        request.protocol.keep_alive(False)
