"""SQLite as the embedded default runs: statements on the event loop's thread, checkpoints on a
thread of their own, and one write lock per file for every Database of this process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from classroom.db.engine import Database
from classroom.db.sqlite import Checkpointer


async def test_statements_run_on_the_event_loops_thread(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    threads: list[int] = []
    try:
        for unit in (db.transaction(), db.reader()):
            async with unit as tx:
                raw = await (await tx.connection()).get_raw_connection()
                driver = raw.driver_connection._conn  # type: ignore[union-attr]
                driver.create_function("whose_thread", 0, threading.get_ident)
                threads.append((await tx.execute(text("SELECT whose_thread()"))).scalar_one())
    finally:
        await db.close()
    assert threads == [threading.get_ident()] * 2


async def test_two_databases_on_one_file_share_the_write_lock(tmp_path: Path) -> None:
    """An application and a test's seeding (say) write to one file from one event loop: the
    second writer waits for the first on the lock, never in SQLite's busy handler (which would
    stop the event loop, and with it the first writer, until the busy timeout)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    try:
        async with first.transaction() as tx:
            await tx.execute(text("CREATE TABLE t (n INTEGER)"))
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with first.transaction() as tx:
                await tx.execute(text("INSERT INTO t VALUES (1)"))
                holding.set()
                await release.wait()

        async def write() -> None:
            async with second.transaction() as tx:
                await tx.execute(text("INSERT INTO t VALUES (2)"))

        holder = asyncio.ensure_future(hold())
        await asyncio.wait_for(holding.wait(), 5)
        writer = asyncio.ensure_future(write())
        for _ in range(20):  # passes of the event loop: the second writer queues on the lock
            await asyncio.sleep(0)  # (in SQLite's busy handler it would stop the loop here)
        assert not writer.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, writer), 5)
        async with second.reader() as tx:
            rows = (await tx.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
        assert rows == [1, 2]
    finally:
        await first.close()
        await second.close()


async def test_commits_leave_the_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        for unit in (db.transaction(), db.reader()):
            async with unit as tx:  # no commit moves the log into the file on the loop's thread
                assert (await tx.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0
        async with db.transaction() as tx:
            await tx.execute(text("CREATE TABLE t (blob TEXT)"))
        for _ in range(20):
            async with db.transaction() as tx:
                await tx.execute(text("INSERT INTO t VALUES (:b)"), {"b": "x" * 10_000})
        checkpointer = Checkpointer(str(path))
        await asyncio.to_thread(checkpointer.checkpoint)
        await checkpointer.stop()
        # The database file alone (without its log) now holds every row.
        alone = tmp_path / "alone.db"
        alone.write_bytes(path.read_bytes())
        with sqlite3.connect(alone) as check:
            assert check.execute("SELECT count(*) FROM t").fetchone() == (20,)
    finally:
        await db.close()


async def test_stopping_the_checkpointer_waits_for_a_checkpoint_under_way(tmp_path: Path) -> None:
    """Closing its connection while a checkpoint runs on the thread would crash the process:
    stop() waits for the checkpoint (here: stopped again and again in the middle of them)."""
    path = tmp_path / "busy.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction() as tx:
            await tx.execute(text("CREATE TABLE t (blob TEXT)"))
        for round_ in range(30):
            checkpointer = Checkpointer(str(path), interval=0)
            checkpointer.start()
            for _ in range(3):
                async with db.transaction() as tx:
                    await tx.execute(text("INSERT INTO t VALUES (:b)"), {"b": "x" * 5_000})
                await asyncio.sleep(0)
            await asyncio.wait_for(checkpointer.stop(), 10)
            assert checkpointer.checkpoints >= 0, round_
    finally:
        await db.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (90,)


async def test_a_unit_of_work_ends_without_waiting_for_the_event_loop(tmp_path: Path) -> None:
    """Commit (or rollback) and close happen at once: no pass of the event loop in between
    (SQLAlchemy's session context closes in a task of its own, two passes per transaction, long
    ones when a thousand connections keep the loop busy). The connection goes back to its pool."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'passes.db'}")
    try:
        async with db.transaction() as tx:  # the pools open their connections (on a thread)
            await tx.execute(text("CREATE TABLE t (n INTEGER)"))
        async with db.reader() as tx:
            await tx.execute(text("SELECT 1"))
        passes: list[int] = []
        asyncio.get_running_loop().call_soon(passes.append, 1)
        async with db.transaction() as tx:
            await tx.execute(text("INSERT INTO t VALUES (1)"))
        async with db.reader() as tx:
            assert (await tx.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
        try:
            async with db.transaction() as tx:
                await tx.execute(text("INSERT INTO t VALUES (2)"))
                raise ValueError("refused")
        except ValueError:
            pass
        assert passes == []  # the callback scheduled before them has not run yet
        async with db.reader() as tx:
            assert (await tx.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
        for engine in (db.engine, db._read_engine):
            assert engine is not None and engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await db.close()


async def test_writers_begin_immediate_and_readers_deferred(tmp_path: Path) -> None:
    """A unit of work takes SQLite's write lock at its BEGIN (issued on the driver connection
    directly), before its first statement; a reader takes none."""
    path = tmp_path / "begin.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with db.transaction() as tx:
            await tx.execute(text("CREATE TABLE t (n INTEGER)"))

        def other_may_write() -> bool:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                return False
            other.execute("ROLLBACK")
            return True

        async with db.transaction() as tx:
            await tx.execute(text("SELECT count(*) FROM t"))  # reads only, yet holds the lock
            assert not other_may_write()
        assert other_may_write()
        async with db.reader() as tx:
            assert (await tx.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
            assert other_may_write()
    finally:
        other.close()
        await db.close()
