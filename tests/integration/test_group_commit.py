"""Group commit on a real database (SQLite and PostgreSQL): works waiting at the same moment share
one transaction, each caller gets its own result after the commit, and a failing work fails
alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.engine import Database, insert_later
from classroom.db.groups import GroupCommit, Work
from classroom.db.tables import SessionTransition, table, utcnow
from classroom.sessions.store import transition_row
from tests.support import seed_session

TUTOR = Identity("tutor-gc", "tutor", "Tutor", "t@example.test")
STUDENT = Identity("student-gc", "student", "Student", "s@example.test")


def note(session_id: str, detail: str) -> Work[str]:
    async def work(tx: AsyncSession) -> str:
        tx.add(
            SessionTransition(
                session_id=session_id, to_state="accepted", detail=detail, at=utcnow()
            )
        )
        await tx.flush()
        return detail

    return work


async def details(db: Database, session_id: str) -> set[str]:
    async with db.reader() as tx:
        rows = await tx.execute(
            select(SessionTransition.detail).where(
                SessionTransition.session_id == session_id,
                SessionTransition.detail.like("gc-%"),
            )
        )
        return {d for d in rows.scalars() if d is not None}


async def test_works_waiting_together_share_a_transaction(db: Database) -> None:
    session_id = await seed_session(db, TUTOR, [STUDENT])
    groups = GroupCommit(db, clock=lambda: 0.0)  # still: never idle after its first group
    results = await asyncio.wait_for(
        asyncio.gather(*(groups.run(note(session_id, f"gc-{i}")) for i in range(30))), 30
    )
    assert results == [f"gc-{i}" for i in range(30)]  # each caller its own result, in order
    assert await details(db, session_id) == {f"gc-{i}" for i in range(30)}
    assert groups.transactions < 30


async def test_a_work_is_committed_before_run_returns(db: Database) -> None:
    session_id = await seed_session(db, TUTOR, [STUDENT])
    assert await GroupCommit(db).run(note(session_id, "gc-alone")) == "gc-alone"
    assert await details(db, session_id) == {"gc-alone"}


async def test_a_failing_work_fails_alone(db: Database) -> None:
    session_id = await seed_session(db, TUTOR, [STUDENT])
    groups = GroupCommit(db)

    async def broken(tx: AsyncSession) -> str:
        await note(session_id, "gc-broken")(tx)
        raise RuntimeError("no")

    works = [note(session_id, f"gc-{i}") for i in range(4)]
    works.insert(2, broken)
    results = await asyncio.wait_for(
        asyncio.gather(*(groups.run(w) for w in works), return_exceptions=True), 30
    )
    assert isinstance(results[2], RuntimeError)
    assert [r for k, r in enumerate(results) if k != 2] == [f"gc-{i}" for i in range(4)]
    # the broken work's own write was rolled back with it; everyone else's is committed
    assert await details(db, session_id) == {f"gc-{i}" for i in range(4)}
    assert await groups.run(note(session_id, "gc-after")) == "gc-after"  # and it goes on


async def test_a_cancelled_caller_still_commits(db: Database) -> None:
    session_id = await seed_session(db, TUTOR, [STUDENT])
    groups = GroupCommit(db)
    first = asyncio.ensure_future(groups.run(note(session_id, "gc-first")))
    cancelled = asyncio.ensure_future(groups.run(note(session_id, "gc-cancelled")))
    await asyncio.sleep(0)  # both are queued
    cancelled.cancel()
    assert await asyncio.wait_for(first, 30) == "gc-first"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(groups.run(note(session_id, "gc-last")), 30)  # after that group
    assert await details(db, session_id) == {"gc-first", "gc-cancelled", "gc-last"}


async def test_groups_are_bounded(db: Database) -> None:
    session_id = await seed_session(db, TUTOR, [STUDENT])
    groups = GroupCommit(db, max_group=5)
    await asyncio.wait_for(
        asyncio.gather(*(groups.run(note(session_id, f"gc-{i}")) for i in range(12))), 30
    )
    assert groups.transactions >= 3  # 12 works, at most 5 a transaction
    async with db.reader() as tx:
        count = await tx.scalar(
            select(func.count()).where(
                SessionTransition.session_id == session_id,
                SessionTransition.detail.like("gc-%"),
            )
        )
    assert count == 12


async def test_sqlite_commits_in_wal_mode_without_an_fsync_each(tmp_path: Path) -> None:
    """SQLite runs in WAL mode with synchronous=NORMAL on every connection (readers and writers):
    a commit costs no fsync; a crash of the process loses nothing committed."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    try:
        for unit in (db.transaction(), db.reader()):
            async with unit as tx:
                assert (await tx.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                assert (await tx.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL
    finally:
        await db.close()


async def test_rows_kept_for_later_are_inserted_by_any_write_transaction(db: Database) -> None:
    """``insert_later`` rows are written when a transaction's block ends, whoever opened it (not
    only the group commit), and not at all when the block fails."""
    session_id = await seed_session(db, TUTOR, [STUDENT])
    transitions = table(SessionTransition)

    def row(detail: str) -> dict[str, object]:
        return transition_row(session_id, None, None, "accepted", utcnow(), detail)

    async with db.transaction() as tx:
        insert_later(tx, transitions, row("gc-kept-1"))
        insert_later(tx, transitions, row("gc-kept-2"))
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            insert_later(tx, transitions, row("gc-kept-failed"))
            raise RuntimeError("the block fails")
    assert await details(db, session_id) == {"gc-kept-1", "gc-kept-2"}
