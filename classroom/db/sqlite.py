"""SQLite connections that run their statements on the event loop's thread.

aiosqlite runs every call (cursor, execute, fetch, commit, ...) on a worker thread and hands the
result back through the event loop: five to ten thread hops per transaction, each costing more CPU
than the statement itself (SQLite in WAL mode with ``synchronous=NORMAL`` answers from memory in
microseconds and never waits for the disk at commit) and a pass of the event loop. Measured on a
one-row update transaction: 1.1-1.4 ms of CPU through the worker thread, 0.5 ms inline.

``InlineConnection`` is aiosqlite's connection with ``_execute`` (private: aiosqlite 0.22.1, pinned
and digested in ``tests/unit/test_db_sqlite_pins.py``) calling the function at once instead of
queueing it for the thread. The worker thread still opens and closes the sqlite3 connection (made
with ``check_same_thread=False``; the sqlite3 module is built thread-safe), so the rest of aiosqlite
and SQLAlchemy's adapter work unchanged.

What runs inline must stay short, so the connections never wait on the disk or on a lock:
- ``Database`` serialises this process's writers on an asyncio lock (one per database file), and
  readers in WAL mode never wait for a writer;
- WAL checkpoints (which write and sync the database file) are taken off the commit path
  (``PRAGMA wal_autocheckpoint=0``) and run by ``Checkpointer`` on a thread of their own.
Another process writing the same file would make a writer wait up to the busy timeout on the
event loop's thread: with several processes, use PostgreSQL (see README).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 5.0
CHECKPOINT_INTERVAL_SECONDS = 1.0


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run on the calling (event loop) thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def execute_now(self, sql: str) -> None:
        """Run one statement without a result at once (``BEGIN``: SQLAlchemy's ``begin`` event
        is synchronous; through its own execution path the statement cost as much as a query)."""
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        self._connection.execute(sql).close()


def inline_creator(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect: connections to ``path``."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)

    async def create() -> InlineConnection:
        connection = InlineConnection(connector, iter_chunk_size=64)
        await connection  # the worker thread opens the sqlite3 connection
        return connection

    return create


class Checkpointer:
    """Moves the write-ahead log into the database file every ``interval`` seconds, on a thread
    (a PASSIVE checkpoint: it never blocks readers or writers, and stops at pages a reader still
    needs), so commits never do it on the event loop's thread."""

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Future[None] | None = None  # the checkpoint on its thread
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one use of the connection at a time, close included
        self.checkpoints = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpoint")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._running = asyncio.ensure_future(asyncio.to_thread(self.checkpoint))
            try:
                # A cancelled loop leaves the thread running: stop() waits for it.
                await asyncio.shield(self._running)
            except Exception:
                log.exception("sqlite checkpoint failed; trying again in %.0f s", self._interval)

    def checkpoint(self) -> None:
        """One passive checkpoint (blocking: call it on a thread)."""
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self._path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
                )
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._running is not None:  # never close the connection under a checkpoint
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None
        await asyncio.to_thread(self._close)
