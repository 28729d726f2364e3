"""Engines and the unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from classroom.db.groups import GroupCommit


def create_engine(url: str, *, for_writes: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine.sync_engine, "BEGIN IMMEDIATE" if for_writes else "BEGIN")
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(engine: Engine, begin: str) -> None:
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
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(begin)


class Database:
    """Owns the engines and hands out units of work (commit on success, roll back otherwise).

    On SQLite (one process, the embedded default) writers queue on an in-process lock instead
    of SQLite's sleeping busy handler, and readers use their own engine with deferred
    transactions, so reads never wait for the write lock (WAL lets them run beside a writer).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine: AsyncEngine | None = None
        self._read_sessionmaker = self.sessionmaker
        self._write_lock: asyncio.Lock | None = None
        # Small writes that arrive together (joins, attendance) share a transaction.
        self.groups = GroupCommit(self)
        if self.engine.dialect.name == "sqlite":
            self._read_engine = create_engine(url, for_writes=False)
            self._read_sessionmaker = async_sessionmaker(self._read_engine, expire_on_commit=False)
            self._write_lock = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self.sessionmaker() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (it must not write)."""
        async with self._read_sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.groups.close()
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()
