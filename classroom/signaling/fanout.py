"""Socket.IO across processes: python-socketio's Redis manager on one explicit, bounded pool, and
the cluster channel (``classroom.rooms.cluster``) carried on the same Redis channel.

Left to itself, ``AsyncRedisManager`` builds its client with ``Redis.from_url`` — an unbounded-
looking pool of 100 connections that raises "Too many connections" above that — and on any publish
error builds a *new* client (a new pool; the old one leaks) and tries once more, dropping the emit
when that fails too. Here:

- one ``BlockingConnectionPool`` of ``pool_size`` connections is built once: a burst of emits
  waits (up to ``pool_timeout``) for a free connection instead of failing;
- publishing retries on the same pool (redis-py reconnects broken connections itself) and never
  replaces the listener's subscription;
- when the listener's subscription fails, the manager's own retry loop asks for a new one: the
  old one is closed so its connection goes back to the pool.

Cluster messages are Socket.IO "emits" to a namespace no client can join: the manager delivers
them here, to this process's handlers (inline for our own, through one ordered worker for the
other processes', so the Redis listener is never held up by a handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from classroom.rooms.cluster import Handler, Handlers, Message

log = logging.getLogger(__name__)

CLUSTER_NAMESPACE = "/_cluster"  # never registered: no client can connect to it
DEFAULT_POOL_SIZE = 20


class RedisFanout(socketio.AsyncRedisManager):  # type: ignore[misc]
    """The Socket.IO client manager for several processes, and their ``Cluster``."""

    redis: Redis | None
    pubsub: Any
    connected: bool
    channel: str

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout: float = 5.0,
    ) -> None:
        if pool_size < 2:
            raise ValueError("the fan-out pool needs at least 2 connections (1 subscribes)")
        super().__init__(url, channel=channel, logger=log)
        self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=pool_timeout,
            socket_connect_timeout=5.0,
            health_check_interval=30,
        )
        self._handlers = Handlers()
        self._inbox: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- Cluster -------------------------------------------------------------------------------
    def subscribe(self, kind: str, handler: Handler) -> None:
        self._handlers.add(kind, handler)

    async def publish(self, kind: str, message: Message) -> None:
        await self.emit(kind, message, namespace=CLUSTER_NAMESPACE)

    @property
    def listening(self) -> bool:
        """Subscribed on a live connection: messages of the other processes reach this one.
        (False from the moment the subscription's connection is lost until the manager's
        listener has subscribed again: what is published meanwhile is not received.)"""
        pubsub = self.pubsub
        if not self.connected or pubsub is None or not pubsub.subscribed:
            return False
        connection = pubsub.connection
        return connection is not None and bool(connection.is_connected)

    # -- the manager ---------------------------------------------------------------------------
    def initialize(self) -> None:
        super().initialize()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="cluster-inbox"
            )

    def _client(self) -> Redis:
        if self.redis is None:
            self.redis = Redis(connection_pool=self._pool)
        return self.redis

    def _redis_connect(self) -> None:
        """Called by the manager's listener to (re)subscribe: same pool, fresh subscription."""
        stale = self.pubsub
        self.pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        self.connected = True
        if stale is not None:
            task = asyncio.get_running_loop().create_task(_close_quietly(stale))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _publish(self, data: Any) -> None:
        payload = self.json.dumps(data)
        for attempt in (1, 2):
            try:
                await self._client().publish(self.channel, payload)
                return
            except (RedisError, OSError) as exc:
                if attempt == 2:
                    log.error(
                        "fan-out message lost channel=%s method=%s: %s",
                        self.channel,
                        data.get("method") if isinstance(data, dict) else "?",
                        exc,
                    )
                else:
                    log.warning(
                        "fan-out publish failed, retrying channel=%s: %s", self.channel, exc
                    )

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("namespace") != CLUSTER_NAMESPACE:
            await super()._handle_emit(message)
            return
        kind, data = message.get("event"), message.get("data")
        payload = data[0] if isinstance(data, list) and len(data) == 1 else None
        if not isinstance(kind, str) or not isinstance(payload, dict):
            log.warning("malformed cluster message ignored: %r", message)
            return
        if message.get("host_id") == self.host_id:
            await self._handlers.dispatch(kind, payload)
        else:
            self._inbox.put_nowait((kind, payload))

    async def _work(self) -> None:
        while True:
            kind, payload = await self._inbox.get()
            await self._handlers.dispatch(kind, payload)

    async def close(self) -> None:
        """Stop listening and release every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (getattr(self, "thread", None), self._worker) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._retiring, return_exceptions=True)
        if self.pubsub is not None:
            await _close_quietly(self.pubsub)
        if self.redis is not None:
            await self.redis.aclose()
        await self._pool.disconnect()
        log.info("fan-out closed channel=%s", self.channel)


async def _close_quietly(pubsub: Any) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()
