"""What every server process must hear: the cluster port, and its one-process implementation.

Some room events need action on *every* process, not only the one where they happened: a closed
classroom takes each process's own sockets out and tears down its media; a presence change
refreshes the *Complete Session* button of the tutor's details pages wherever they are connected.
``publish`` delivers a message to the handlers of every process: this process's at once, in
order, before ``publish`` returns; the other processes' soon after (with Redis, through the
Socket.IO manager's channel: ``classroom.signaling.fanout``). Delivery is fire-and-forget, so
handlers act on state they re-read (presence, the database), never on the message alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]

CLASSROOM_CLOSED = "classroom_closed"  # {"session_id", "reason"}
PRESENCE_CHANGED = "presence_changed"  # {"session_id", "version", "left": [user_id], "origin"}
PARTICIPANT_REMOVED = "participant_removed"  # {"session_id", "user_id"}: the tutor removed them


class Cluster(Protocol):
    def subscribe(self, kind: str, handler: Handler) -> None:
        """Call ``handler(message)`` for every ``kind`` message published by any process."""

    async def publish(self, kind: str, message: Message) -> None: ...


class Handlers:
    """The handlers of one process, by kind; a failing handler is logged, the others still run."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[Handler]] = {}

    def add(self, kind: str, handler: Handler) -> None:
        self._by_kind.setdefault(kind, []).append(handler)

    async def dispatch(self, kind: str, message: Message) -> None:
        for handler in self._by_kind.get(kind, ()):
            try:
                await handler(message)
            except Exception:
                log.exception(
                    "cluster handler failed kind=%s session=%s", kind, message.get("session_id")
                )


class LocalCluster:
    """One process (in-process presence): publishing is calling this process's handlers."""

    def __init__(self) -> None:
        self._handlers = Handlers()

    def subscribe(self, kind: str, handler: Handler) -> None:
        self._handlers.add(kind, handler)

    async def publish(self, kind: str, message: Message) -> None:
        await self._handlers.dispatch(kind, message)
