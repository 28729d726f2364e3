"""The attendance log commits the changes that wait at the same time in one transaction; each
caller returns after its own change is committed, and a change that fails fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.groups import IDLE_AFTER, GroupCommit
from classroom.db.migrate import upgrade
from classroom.db.tables import Attendance
from classroom.metrics import Metrics
from classroom.rooms.attendance import AttendanceLog
from classroom.rooms.memory import MemoryPresence
from classroom.rooms.model import Change, Member
from classroom.rooms.service import RoomService
from classroom.sessions.ports import PresenceSnapshot
from tests.support import seed_session

AT = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


class CountingDatabase:
    """The real database, counting its write transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        self.transactions += 1
        async with self.db.transaction() as tx:
            yield tx


class FailingFor:
    """Attendance events that fail for one session (the webhook outbox, say)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    async def participant_joined(
        self, tx: AsyncSession, session_id: str, user_id: str, role: str, at: datetime | None = None
    ) -> bool:
        if session_id == self.session_id:
            raise RuntimeError("outbox unavailable")
        return False

    async def participant_left(
        self,
        tx: AsyncSession,
        session_id: str,
        user_id: str,
        role: str,
        reason: str,
        at: datetime | None = None,
    ) -> bool:
        return False


def joined(session_id: str, user_id: str) -> Change:
    return Change(
        PresenceSnapshot(session_id, 1, ()), changed=True, joined=(Member(user_id, "X", "student"),)
    )


def left(session_id: str, user_id: str) -> Change:
    return Change(
        PresenceSnapshot(session_id, 2, ()),
        changed=True,
        left=((Member(user_id, "X", "student"), "clean"),),
    )


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements ``db``'s writer runs meanwhile (each execution once, batched or not)."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def sessions(db: Database, count: int) -> list[str]:
    tutor = Identity("tutor-g", "tutor", "Tutor", "t@example.test")
    student = Identity("student-g", "student", "Student", "s@example.test")
    return [await seed_session(db, tutor, [student]) for _ in range(count)]


async def stays(db: Database) -> dict[str, int]:
    async with db.reader() as tx:
        rows = (await tx.execute(select(Attendance.session_id))).scalars()
        found: dict[str, int] = {}
        for session_id in rows:
            found[session_id] = found.get(session_id, 0) + 1
        return found


async def test_changes_waiting_together_share_a_transaction(db: Database) -> None:
    ids = await sessions(db, 30)
    counting = CountingDatabase(db)
    still = GroupCommit(counting, clock=lambda: 0.0)  # never idle after its first group
    log = AttendanceLog(counting, groups=still)  # type: ignore[arg-type]
    await asyncio.wait_for(
        asyncio.gather(*(log.record(i, joined(i, "student-g"), AT) for i in ids)), 30
    )
    assert await stays(db) == {i: 1 for i in ids}  # every caller's change is committed
    assert counting.transactions < len(ids)


async def test_the_stays_of_a_group_are_inserted_by_one_statement(db: Database) -> None:
    """One INSERT per transaction for all of its stays, not one per stay (the ORM inserts rows
    whose key the database generates one statement each on SQLite, to read each key back)."""
    ids = await sessions(db, 30)
    counting = CountingDatabase(db)
    still = GroupCommit(counting, clock=lambda: 0.0)
    log = AttendanceLog(counting, groups=still)  # type: ignore[arg-type]
    with statements(db) as seen:
        await asyncio.wait_for(
            asyncio.gather(*(log.record(i, joined(i, "student-g"), AT) for i in ids)), 30
        )
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT INTO ATTENDANCE")]
    assert len(inserts) == counting.transactions < len(ids)
    assert await stays(db) == {i: 1 for i in ids}


async def test_a_leave_in_the_transaction_of_its_join_closes_the_stay(db: Database) -> None:
    """The join's stay, kept for the transaction's one INSERT, is written before the leave's
    UPDATE looks for it (a join and a leave of one classroom never share a group through the
    room service, which holds the classroom's lock until the record commits; the log itself
    must not depend on that)."""
    first, other = await sessions(db, 2)
    still = GroupCommit(db, clock=lambda: 0.0)
    log = AttendanceLog(db, groups=still)
    await asyncio.wait_for(
        asyncio.gather(
            log.record(first, joined(first, "student-g"), AT),  # alone: the writer was idle
            log.record(other, joined(other, "student-g"), AT),  # these three: one group
            log.record(other, left(other, "student-g"), AT),
            log.record(first, joined(first, "student-h"), AT),
        ),
        30,
    )
    assert still.transactions == 2
    async with db.reader() as tx:
        rows = (await tx.execute(select(Attendance.session_id, Attendance.user_id,
                                        Attendance.left_at))).all()  # fmt: skip
    assert sorted((r.session_id == other, r.user_id, r.left_at is not None) for r in rows) == [
        (False, "student-g", False),
        (False, "student-h", False),
        (True, "student-g", True),
    ]


async def test_a_stay_the_database_refuses_fails_alone(db: Database) -> None:
    """A row refused at the group's INSERT (no such session: a foreign key) fails the group's
    transaction; retried one by one, only its own change fails, and no other stay is written
    twice."""
    ids = await sessions(db, 4)
    still = GroupCommit(db, clock=lambda: 0.0)
    log = AttendanceLog(db, groups=still)
    changes = [(i, joined(i, "student-g")) for i in ids]
    changes.insert(2, ("no-such-session", joined("no-such-session", "student-g")))
    results = await asyncio.wait_for(
        asyncio.gather(*(log.record(i, c, AT) for i, c in changes), return_exceptions=True), 30
    )
    assert isinstance(results[2], Exception)
    assert [r for k, r in enumerate(results) if k != 2] == [None] * 4
    assert await stays(db) == {i: 1 for i in ids}


async def test_a_change_that_fails_fails_alone(db: Database) -> None:
    ids = await sessions(db, 5)
    log = AttendanceLog(db, FailingFor(ids[2]))
    results = await asyncio.wait_for(
        asyncio.gather(
            *(log.record(i, joined(i, "student-g"), AT) for i in ids), return_exceptions=True
        ),
        30,
    )
    assert isinstance(results[2], RuntimeError)
    assert [r for k, r in enumerate(results) if k != 2] == [None] * 4
    assert await stays(db) == {i: 1 for k, i in enumerate(ids) if k != 2}
    # and the log goes on recording afterwards
    await log.record(ids[0], joined(ids[0], "student-h"), AT)
    assert (await stays(db))[ids[0]] == 2


async def test_a_lone_change_is_committed_before_record_returns(db: Database) -> None:
    (session_id,) = await sessions(db, 1)
    await AttendanceLog(db).record(session_id, joined(session_id, "student-g"), AT)
    assert await stays(db) == {session_id: 1}


async def test_a_change_is_recorded_without_a_pass_of_the_loop_when_nothing_else_writes(
    tmp_path: Path,
) -> None:
    """On inline SQLite with the writer idle, a presence change is announced, recorded and
    committed before ``leave`` returns, without the event loop running anything else meanwhile
    (the completion's ack waits for the close's record: every pass there is a wait behind the
    rest of the process's work)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}"
    await upgrade(url)
    db = Database(url)
    try:
        (session_id,) = await sessions(db, 1)
        now = [100.0]
        groups = GroupCommit(db, clock=lambda: now[0])
        rooms = RoomService(MemoryPresence(), AttendanceLog(db, groups=groups), Metrics(), 3.0)
        await rooms.join(session_id, Member("student-g", "Student", "student"), "c1")
        now[0] += IDLE_AFTER * 2  # the writer idle since the join's record

        loop = asyncio.get_running_loop()
        passes = 0

        def tick() -> None:
            nonlocal passes
            passes += 1

        loop.call_soon(tick)  # runs at the loop's next pass, if the leave gives it one
        await asyncio.wait_for(rooms.leave(session_id, "student-g", "c1"), 10)
        assert passes == 0
        async with db.reader() as tx:
            left = (await tx.execute(select(Attendance.left_at))).scalars().all()
        assert len(left) == 1 and left[0] is not None  # committed
    finally:
        await db.close()
