"""A join's batched read (``entry.load_entries``: two statements for every session asked for at
once) gives each session what the one-session reads of ``store`` give: the row, its students, the
names of everyone named on it, and the latest end of a stay in its classroom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import Attendance, SessionParticipant
from classroom.db.tables import Session as SessionRow
from classroom.sessions import entry, store
from classroom.users.directory import upsert_user
from tests.support import seed_session

AT = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)
TUTOR = Identity("e-tutor", "tutor", "Tess Tutor")
ANNA = Identity("e-anna", "student", "Anna Student")
BEN = Identity("e-ben", "student", "Ben Student")
ADMIN = Identity("e-admin", "admin", "Ada Admin")
OPS = Identity("e-ops", "admin", "Otto Ops")


async def expected(db: Database, session_ids: list[str]) -> dict[str, tuple[object, ...]]:
    """What the one-session reads give, per session that exists."""
    out: dict[str, tuple[object, ...]] = {}
    async with db.reader() as tx:
        for session_id in session_ids:
            row = await tx.get(SessionRow, session_id)
            if row is None:
                continue
            participants = (await store.participants_of(tx, [session_id]))[session_id]
            people = [row.tutor_id, row.completed_by or "", row.cancelled_by or ""]
            names = await store.names(tx, people + [p.student_id for p in participants])
            leaves = await store.last_leaves(tx, [session_id])
            out[session_id] = (
                row.id,
                row.state,
                [p.student_id for p in participants],
                names,
                leaves.get(session_id),
            )
    return out


def seen(entries: dict[str, entry.Entry]) -> dict[str, tuple[object, ...]]:
    return {
        session_id: (
            e.row.id,
            e.row.state,
            [p.student_id for p in e.participants],
            e.names,
            e.last_leave,
        )
        for session_id, e in entries.items()
    }


async def test_the_batched_read_gives_what_the_one_session_reads_give(db: Database) -> None:
    plain = await seed_session(db, TUTOR, [ANNA])
    pair = await seed_session(db, TUTOR, [BEN, ANNA])
    nobody = await seed_session(db, TUTOR, [])
    completed = await seed_session(db, TUTOR, [ANNA], state="completed")
    cancelled = await seed_session(db, TUTOR, [BEN], state="cancelled")
    async with db.transaction() as tx:
        await upsert_user(tx, ADMIN)
        await upsert_user(tx, OPS)
        await tx.execute(
            update(SessionRow).where(SessionRow.id == completed).values(completed_by=ADMIN.user_id)
        )
        await tx.execute(
            update(SessionRow).where(SessionRow.id == cancelled).values(cancelled_by=OPS.user_id)
        )
        # a student whose user row the platform never sent: booked, without a name
        tx.add(SessionParticipant(session_id=plain, student_id="e-ghost", acceptance="accepted"))
        stays = [
            (pair, ANNA, AT, AT + timedelta(minutes=20)),
            (pair, BEN, AT, AT + timedelta(minutes=45)),  # the latest end of pair's stays
            (pair, TUTOR, AT + timedelta(minutes=50), None),  # still inside: no end
            (plain, TUTOR, AT, None),  # only an open stay: no last leave
            (completed, ANNA, AT, AT + timedelta(minutes=30)),
        ]
        for session_id, who, joined, left in stays:
            tx.add(
                Attendance(
                    session_id=session_id,
                    user_id=who.user_id,
                    role=who.role,
                    joined_at=joined,
                    left_at=left,
                    leave_reason=None if left is None else "clean",
                )
            )
    asked = [plain, pair, nobody, completed, cancelled, "no-such-session", "x" * 40, ""]
    want = await expected(db, asked)
    got = await entry.load_entries(db, asked)

    assert seen(got) == want
    assert set(got) == {plain, pair, nobody, completed, cancelled}  # the unknown ones left out
    # what the comparison covers, stated: names of students, tutor, completer and canceller
    assert got[pair].participants and [p.student_id for p in got[pair].participants] == [
        ANNA.user_id,
        BEN.user_id,
    ]
    assert got[pair].last_leave == AT + timedelta(minutes=45)
    assert got[plain].last_leave is None
    assert got[plain].names == {TUTOR.user_id: TUTOR.name, ANNA.user_id: ANNA.name}
    assert got[completed].names[ADMIN.user_id] == ADMIN.name
    assert got[cancelled].names == {
        TUTOR.user_id: TUTOR.name,
        BEN.user_id: BEN.name,
        OPS.user_id: OPS.name,
    }
    assert got[nobody].participants == [] and got[nobody].names == {TUTOR.user_id: TUTOR.name}


async def test_nothing_valid_asked_reads_nothing(db: Database) -> None:
    assert await entry.load_entries(db, ["", "y" * 37]) == {}
    assert await entry.load_entries(db, ["no-such-session"]) == {}
