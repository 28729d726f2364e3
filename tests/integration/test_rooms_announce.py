"""A presence change is announced without waiting for its attendance write, and the room's lock
is held until the write is committed: the next change of the classroom (a leave, the completion
closing it) sees the attendance recorded. The real in-process presence and the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import Attendance, Session
from classroom.metrics import Metrics
from classroom.rooms.attendance import AttendanceLog
from classroom.rooms.memory import MemoryPresence
from classroom.rooms.model import Change, Member
from classroom.rooms.service import RoomService

TUTOR = Member("t", "Tina", "tutor")
STUDENT = Member("s", "Sara", "student")


class HeldAttendance(AttendanceLog):
    """The attendance log, its writes held until ``release`` is set."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.written = 0

    async def record(self, session_id: str, change: Change, at: datetime) -> None:
        self.started.set()
        await self.release.wait()
        await super().record(session_id, change, at)
        self.written += 1


class Heard:
    def __init__(self, log: HeldAttendance) -> None:
        self.log = log
        self.changes: list[tuple[Change, int]] = []  # the change, writes done when announced
        self.announced = asyncio.Event()

    async def presence_changed(self, change: Change) -> None:
        self.changes.append((change, self.log.written))
        self.announced.set()

    async def classroom_closed(self, session_id: str, reason: str) -> None:
        return None


async def test_announced_before_the_write_and_the_next_change_waits_for_it(db: Database) -> None:
    async with db.transaction() as tx:
        session = Session(tutor_id="t", starts_at=datetime.now(UTC), duration_minutes=60)
        tx.add(session)
        await tx.flush()
        session_id = session.id
    log = HeldAttendance(db)
    rooms = RoomService(MemoryPresence(), log, Metrics(), 10.0)
    heard = Heard(log)
    rooms.add_listener(heard)
    async with asyncio.timeout(5):
        await rooms.join(session_id, TUTOR, "n:1")  # not held: written and announced
    heard.announced.clear()
    log.started.clear()
    log.release.clear()

    joining = asyncio.create_task(rooms.join(session_id, STUDENT, "n:2"))
    async with asyncio.timeout(5):
        await heard.announced.wait()  # announced while its write is held
        await log.started.wait()
    assert [m.user_id for m in heard.changes[-1][0].joined] == ["s"]
    assert heard.changes[-1][1] == 1  # only the tutor's join was written then
    assert not joining.done()  # the join itself answers once recorded

    # the student leaves at once: the leave waits for the join's write (the room's lock), so
    # it closes the stay the join opened
    heard.announced.clear()
    leaving = asyncio.create_task(rooms.leave(session_id, "s", "n:2"))
    log.release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(joining, leaving)
    assert [m.user_id for m, _ in heard.changes[-1][0].left] == ["s"]
    async with db.reader() as tx:
        rows = (
            await tx.execute(
                select(Attendance.user_id, Attendance.left_at).where(
                    Attendance.session_id == session_id, Attendance.user_id == "s"
                )
            )
        ).all()
    assert len(rows) == 1 and rows[0][1] is not None, rows
