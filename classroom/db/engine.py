"""Engines and the unit of work."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, event, insert, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from classroom.db.groups import GroupCommit
from classroom.db.sqlite import (
    BUSY_TIMEOUT_SECONDS,
    Checkpointer,
    InlineConnection,
    inline_creator,
)


def sqlite_file(url: str) -> str | None:
    """The absolute path of a SQLite database file (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return os.path.abspath(parsed.database)


def create_engine(url: str, *, for_writes: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is None:  # in memory: aiosqlite's own thread
            engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        else:  # statements on the event loop's thread (classroom.db.sqlite)
            engine = create_async_engine(url, async_creator=inline_creator(path))
        _sqlite_pragmas(
            engine.sync_engine,
            "BEGIN IMMEDIATE" if for_writes else "BEGIN",
            checkpoints=path is None,
        )
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(engine: Engine, begin: str, *, checkpoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy issue BEGIN itself, as BEGIN IMMEDIATE, so concurrent writers queue
        # instead of failing on lock upgrades.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives a crash
        # of the server process (not a power loss of the machine) and costs no fsync.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        if not checkpoints:  # Database's Checkpointer takes them, off the event loop's thread
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        driver = conn.connection.driver_connection
        if isinstance(driver, InlineConnection):
            driver.execute_now(begin)
        else:
            conn.exec_driver_sql(begin)


class Database:
    """Owns the engines and hands out units of work (commit on success, roll back otherwise).

    On SQLite (one process, the embedded default) writers queue on an in-process lock (one per
    database file and event loop, shared by every ``Database`` on that file) instead of SQLite's
    sleeping busy handler, readers use their own engine with deferred transactions, so reads never
    wait for the write lock (WAL lets them run beside a writer), and statements run on the event
    loop's thread (``classroom.db.sqlite``) with the write-ahead log checkpointed on a thread.

    On SQLite a unit of work also closes its session directly. SQLAlchemy's ``AsyncSession``
    context manager closes it in a task of its own (so that a cancellation cannot interrupt the
    close): two more passes of the event loop for every transaction, tens of milliseconds when
    a thousand connections keep the loop busy, and every caller of a group commit waits for
    them. Inline SQLite statements never suspend, so nothing can interrupt that close.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine: AsyncEngine | None = None
        self._read_sessionmaker = self.sessionmaker
        self._sqlite_file: str | None = None
        self._checkpointer: Checkpointer | None = None
        # Small writes that arrive together (joins, attendance) share a transaction.
        self.groups = GroupCommit(self)
        if self.engine.dialect.name == "sqlite":
            self._read_engine = create_engine(url, for_writes=False)
            self._read_sessionmaker = async_sessionmaker(self._read_engine, expire_on_commit=False)
            self._sqlite_file = sqlite_file(url) or f"memory:{id(self)}"
            if sqlite_file(url) is not None:
                self._checkpointer = Checkpointer(self._sqlite_file)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write unit of work: committed when the block ends without an exception (the rows
        ``insert_later`` kept inserted first), rolled back otherwise."""
        if self._sqlite_file is None:
            async with self.sessionmaker() as session, session.begin():
                yield session
                await flush_inserts(session)
            return
        if self._checkpointer is not None:
            self._checkpointer.start()
        lock = _write_lock(self._sqlite_file)
        async with lock:
            session = self.sessionmaker()
            try:
                async with session.begin():
                    yield session
                    await flush_inserts(session)
            finally:
                await session.close()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (it must not write)."""
        if self._sqlite_file is None:
            async with self._read_sessionmaker() as session:
                yield session
            return
        session = self._read_sessionmaker()
        try:
            yield session
        finally:
            await session.close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.groups.close()
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()


_INSERTS = "classroom.inserts_kept"  # AsyncSession.info key: table -> rows to insert


def insert_later(tx: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the transaction ends, with the rows the transaction's
    other writes keep for that table: one statement per table rather than one per row (the ORM
    inserts rows with a generated key one statement each on SQLite, to read each key back; a
    group commit's works add up to hundreds). For rows nobody reads back in the same
    transaction; a write that reads or updates the table must ``flush_inserts`` first."""
    tx.info.setdefault(_INSERTS, {}).setdefault(table, []).append(row)


async def flush_inserts(tx: AsyncSession) -> None:
    """Insert the rows ``insert_later`` kept in ``tx`` (a no-op when there are none)."""
    kept: dict[Table, list[dict[str, Any]]] | None = tx.info.pop(_INSERTS, None)
    for table, rows in (kept or {}).items():
        await tx.execute(insert(table), rows)


_WRITE_LOCKS: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def _write_lock(path: str) -> asyncio.Lock:
    """This event loop's lock for writing to the SQLite file at ``path``: two ``Database``
    objects on one file (an application and a test's seeding, say) queue on the same lock, so
    an inline writer never waits in SQLite's busy handler for another one of this process."""
    key = (id(asyncio.get_running_loop()), path)
    lock = _WRITE_LOCKS.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _WRITE_LOCKS[key] = lock
    return lock
