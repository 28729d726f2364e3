"""The sessions service as the classroom calls it (enter, complete, can_complete, the sweep),
against a real database and a fake classroom gate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.config import Settings
from classroom.db.engine import Database
from classroom.db.tables import Attendance, Invoice, LedgerEntry, SessionTransition
from classroom.db.tables import Session as SessionRow
from classroom.errors import (
    ClassroomClosed,
    ClassroomError,
    ClassroomNotOpen,
    InvalidState,
    NotAccepted,
    NotAParticipant,
    NotFound,
    ParticipantsRemain,
)
from classroom.sessions.events import SessionEvent
from classroom.sessions.service import NewSession, SessionService, sweeping
from classroom.users.directory import UserDirectory
from tests.conftest import People, make_settings
from tests.integration.sessions_support import RECAP, Clock, FakeGate
from tests.support import seed_session

START = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[SessionEvent] = []
        self.fail_on = fail_on

    async def record(self, tx: AsyncSession, event: SessionEvent) -> None:
        if event.kind == self.fail_on:
            raise RuntimeError(f"listener failed on {event.kind}")
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class World:
    def __init__(self, db: Database, settings: Settings, people: People) -> None:
        self.db = db
        self.people = people
        self.gate = FakeGate()
        self.clock = Clock(START - timedelta(days=1))
        self.events = Recorder()
        self.service = SessionService(db, settings, self.gate, self.clock, self.events)

    async def book(
        self, mode: str = "online", students: list[Identity] | None = None, day: int = 0
    ) -> str:
        new = NewSession(
            student_ids=[s.user_id for s in (students or [self.people.student])],
            starts_at=START + timedelta(days=day),
            duration_minutes=60,
            mode=mode,
        )
        view = await self.service.create_sessions(self.people.tutor, new)
        session_id: str = view["id"]
        return session_id

    async def accepted(self, mode: str = "online", **kw: Any) -> str:
        session_id = await self.book(mode, kw.get("students"), kw.get("day", 0))
        for student in kw.get("students") or [self.people.student]:
            await self.service.accept(student, session_id)
        return session_id

    async def state(self, session_id: str) -> str:
        view = await self.service.get_session(self.people.admin, session_id)
        state: str = view["state"]
        return state

    async def money(self) -> tuple[int, int]:
        async with self.db.reader() as tx:
            invoices = await tx.scalar(select(func.count(Invoice.id)))
            entries = await tx.scalar(select(func.count(LedgerEntry.id)))
        return int(invoices or 0), int(entries or 0)

    async def stay(self, user: str, role: str, session_id: str, start: int, end: int) -> None:
        async with self.db.transaction() as tx:
            tx.add(
                Attendance(
                    session_id=session_id,
                    user_id=user,
                    role=role,
                    joined_at=START + timedelta(minutes=start),
                    left_at=START + timedelta(minutes=end),
                    leave_reason="clean",
                )
            )


@pytest.fixture
async def world(db: Database, database_url: str, people: People) -> World:
    users = UserDirectory(db)
    for who in (people.tutor, people.student, people.student2, people.parent, people.admin):
        await users.remember(who)
    return World(db, make_settings(database_url), people)


# -- enter_classroom -------------------------------------------------------------------------------
async def test_first_entry_starts_the_session(world: World, people: People) -> None:
    session_id = await world.accepted()
    world.clock.set(START - timedelta(minutes=15))  # the classroom opens
    view = await world.service.enter_classroom(people.student, session_id)
    assert view["state"] == "in_progress"
    assert view["started_at"] == "2030-03-04T16:45:00Z"
    assert view["classroom"]["open"] is True
    again = await world.service.enter_classroom(people.tutor, session_id)
    assert again["state"] == "in_progress"
    assert again["tutor"]["id"] == "tutor-1"
    assert "notes" in again and "notes" not in view
    assert again["students"][0]["id"] == "student-1" and "attendance" not in again  # the summary
    details = await world.service.get_session(people.tutor, session_id)
    transitions = [(h["from"], h["to"]) for h in details["history"]]
    assert transitions.count(("accepted", "in_progress")) == 1
    assert world.events.kinds().count("session.started") == 1


async def test_concurrent_first_entries_start_it_once(world: World, people: People) -> None:
    session_id = await world.accepted()
    world.clock.set(START)
    views = await asyncio.wait_for(
        asyncio.gather(
            world.service.enter_classroom(people.tutor, session_id),
            world.service.enter_classroom(people.student, session_id),
            world.service.enter_classroom(people.tutor, session_id),
        ),
        30,
    )
    assert {v["state"] for v in views} == {"in_progress"}
    history = (await world.service.get_session(people.tutor, session_id))["history"]
    assert [h["to"] for h in history].count("in_progress") == 1
    assert world.events.kinds().count("session.started") == 1


async def test_entries_sharing_a_read_each_get_their_own_summary(
    world: World, people: People
) -> None:
    """The entries of one session at one moment share its read and the summary rendered from
    it: each still answers with a dict of its own, the tutor's with the notes, the student's
    without, both as the start left the session."""
    session_id = await world.accepted()
    world.clock.set(START)
    tutor, student = await asyncio.wait_for(
        asyncio.gather(
            world.service.enter_classroom(people.tutor, session_id),
            world.service.enter_classroom(people.student, session_id),
        ),
        30,
    )
    assert tutor["state"] == student["state"] == "in_progress"
    assert tutor["started_at"] == student["started_at"] == "2030-03-04T17:00:00Z"
    assert "notes" in tutor and "notes" not in student
    assert {k: v for k, v in tutor.items() if k != "notes"} == student
    tutor["topic"] = "changed by one caller"
    assert student["topic"] != "changed by one caller"


async def test_a_storm_of_first_entries_starts_each_session_once_together(
    world: World, db: Database
) -> None:
    """The start of the hour: everyone of many lessons enters at once. Each session starts
    once (one transition, one event, by one of its entries), the reads and the starts are
    shared (far fewer reads and transactions than entries), every entry sees it started, and
    no session is read twice (an entry whose start committed answers from its first read)."""
    pairs = [
        (
            Identity(f"tutor-s{i}", "tutor", f"Tutor {i}", None),
            Identity(f"student-s{i}", "student", f"Student {i}", None),
        )
        for i in range(20)
    ]
    ids = [await seed_session(db, t, [s], starts_at=START) for t, s in pairs]
    world.clock.set(START)
    transactions = db.groups.transactions
    read: list[str] = []
    load = world.service._entries._load

    async def counting(keys: Any) -> Any:
        read.extend(keys)
        return await load(keys)

    world.service._entries._load = counting
    entries = [(who, i) for (t, s), i in zip(pairs, ids, strict=True) for who in (t, s)]
    views = await asyncio.wait_for(
        asyncio.gather(*(world.service.enter_classroom(who, i) for who, i in entries)), 30
    )
    assert [v["id"] for v in views] == [i for _, i in entries]
    assert {v["state"] for v in views} == {"in_progress"}
    started = [e for e in world.events.events if e.kind == "session.started"]
    assert sorted(e.session_id for e in started) == sorted(ids)
    pair_of = {i: {t.user_id, s.user_id} for (t, s), i in zip(pairs, ids, strict=True)}
    assert all(e.actor_id in pair_of[e.session_id] for e in started)
    async with db.reader() as tx:
        rows = await tx.execute(
            select(SessionTransition.session_id).where(
                SessionTransition.session_id.in_(ids), SessionTransition.to_state == "in_progress"
            )
        )
        assert sorted(rows.scalars()) == sorted(ids)
    assert db.groups.transactions - transactions < len(ids)
    assert world.service._entries.reads < len(entries)
    assert sorted(read) == sorted(ids)  # each session read once, for both of its entries


async def test_an_entry_after_someone_else_moved_the_session_reads_it_again(
    world: World, people: People, db: Database
) -> None:
    """The start is a conditional update: a session cancelled between an entry's read and its
    write is not started, and the entry is refused as the session now is."""
    session_id = await world.accepted()
    world.clock.set(START)
    cancelled = asyncio.Event()
    original = world.service._starts._load

    async def cancel_first(starts: Any) -> dict[tuple[str, str], datetime]:
        if not cancelled.is_set():
            cancelled.set()
            async with db.transaction() as tx:
                await tx.execute(
                    update(SessionRow)
                    .where(SessionRow.id == session_id)
                    .values(state="cancelled", classroom_closed_at=START)
                )
        return await original(starts)

    world.service._starts._load = cancel_first
    with pytest.raises(ClassroomClosed):
        await asyncio.wait_for(world.service.enter_classroom(people.student, session_id), 30)
    assert await world.state(session_id) == "cancelled"
    assert "session.started" not in world.events.kinds()


async def test_who_may_enter(world: World, people: People) -> None:
    session_id = await world.accepted()
    world.clock.set(START)
    for who in (people.parent, people.admin):
        with pytest.raises(NotAParticipant):
            await world.service.enter_classroom(who, session_id)
    for who in (people.student2, people.tutor2):
        with pytest.raises(NotFound):
            await world.service.enter_classroom(who, session_id)
    with pytest.raises(NotFound):
        await world.service.enter_classroom(people.tutor, "no-such-session")


async def test_the_classroom_window(world: World, people: People) -> None:
    session_id = await world.accepted()
    world.clock.set(START - timedelta(minutes=15, seconds=1))
    with pytest.raises(ClassroomNotOpen) as info:
        await world.service.enter_classroom(people.student, session_id)
    assert info.value.extra["opens_at"] == "2030-03-04T16:45:00Z"
    world.clock.set(START + timedelta(minutes=90))  # scheduled end + 30 minutes: the hard cap
    with pytest.raises(ClassroomClosed):
        await world.service.enter_classroom(people.tutor, session_id)
    world.clock.set(START + timedelta(minutes=89))
    await world.service.enter_classroom(people.tutor, session_id)


async def test_a_student_who_has_not_accepted_cannot_enter(world: World, people: People) -> None:
    session_id = await world.book()
    world.clock.set(START)
    with pytest.raises(NotAccepted):
        await world.service.enter_classroom(people.student, session_id)
    assert await world.state(session_id) == "requested"


async def test_the_tutor_starting_an_unaccepted_session_marks_it_missed(
    world: World, people: People
) -> None:
    session_id = await world.book()
    world.clock.set(START - timedelta(minutes=5))
    with pytest.raises(NotAccepted):
        await world.service.enter_classroom(people.tutor, session_id)
    view = await world.service.get_session(people.tutor, session_id)
    assert (view["state"], view["state_reason"]) == ("missed", "not_accepted")
    assert (view["history"][-1]["from"], view["history"][-1]["to"]) == ("requested", "missed")
    assert world.events.kinds()[-1] == "session.missed"
    with pytest.raises(ClassroomClosed):
        await world.service.enter_classroom(people.tutor, session_id)
    with pytest.raises(InvalidState):  # cannot be billed, not even by support
        await world.service.complete_session(people.admin, session_id, 45, RECAP)
    with pytest.raises(InvalidState):
        await world.service.accept(people.student, session_id)


async def test_in_person_and_closed_sessions_have_no_classroom(
    world: World, people: People
) -> None:
    in_person = await world.accepted(mode="in_person")
    world.clock.set(START)
    with pytest.raises(InvalidState):
        await world.service.enter_classroom(people.tutor, in_person)
    completed = await world.accepted(students=[people.student2], day=1)
    world.clock.set(START + timedelta(days=1, minutes=60))
    await world.service.complete_session(people.tutor, completed, 45, RECAP)
    with pytest.raises(ClassroomClosed):
        await world.service.enter_classroom(people.student2, completed)


# -- complete_session ------------------------------------------------------------------------------
async def test_completion_closes_the_gate_then_commits_then_tells_the_classroom(
    world: World, people: People
) -> None:
    session_id = await world.accepted()
    world.clock.set(START + timedelta(minutes=60))
    view = await world.service.complete_session(people.tutor, session_id, 45, RECAP)
    assert view["state"] == "completed"
    assert world.gate.names() == ["close_for_completion", "completed"]
    assert world.events.kinds()[-1] == "session.completed"
    completed = world.events.events[-1]
    assert completed.data["minutes"] == 45
    assert [i["student_id"] for i in completed.data["invoices"]] == ["student-1"]


async def test_participants_remain_writes_nothing(world: World, people: People) -> None:
    session_id = await world.accepted()
    world.clock.set(START + timedelta(minutes=60))
    world.gate.inside[session_id] = {"tutor-1", "student-1"}
    assert await world.service.can_complete(people.tutor, session_id) is False
    with pytest.raises(ParticipantsRemain):
        await world.service.complete_session(people.tutor, session_id, 45, RECAP)
    assert world.gate.names() == ["close_for_completion"]  # nothing to reopen
    assert await world.state(session_id) == "accepted"
    assert await world.money() == (0, 0)
    world.gate.inside[session_id] = {"tutor-1"}
    assert await world.service.can_complete(people.tutor, session_id) is True
    assert await world.service.can_complete(people.student, session_id) is False
    assert await world.service.can_complete(people.admin, session_id) is False
    assert await world.service.can_complete(people.tutor2, session_id) is False


async def test_a_failed_transaction_rolls_back_everything_and_reopens(
    world: World, people: People
) -> None:
    session_id = await world.accepted()
    world.clock.set(START + timedelta(minutes=60))
    world.events.fail_on = "session.completed"  # fails after state, invoice and ledger writes
    with pytest.raises(RuntimeError):
        await world.service.complete_session(people.tutor, session_id, 45, RECAP)
    assert world.gate.names() == ["close_for_completion", "reopen"]
    assert await world.state(session_id) == "accepted"
    assert await world.money() == (0, 0)
    world.events.fail_on = None
    view = await world.service.complete_session(people.tutor, session_id, 45, RECAP)
    assert view["state"] == "completed"
    assert await world.money() == (1, 3)


async def test_a_failing_classroom_notice_does_not_undo_the_completion(
    world: World, people: People
) -> None:
    session_id = await world.accepted()
    world.clock.set(START + timedelta(minutes=60))
    world.gate.fail_completed = True
    view = await world.service.complete_session(people.tutor, session_id, 45, RECAP)
    assert view["state"] == "completed"


async def test_duplicate_completions_from_two_processes_bill_once_and_never_reopen(
    world: World, people: People, db: Database, database_url: str
) -> None:
    """Two service instances (no shared in-process lock) race on one database."""
    session_id = await world.accepted(students=[people.student, people.student2])
    world.clock.set(START + timedelta(minutes=60))
    other = SessionService(db, make_settings(database_url), world.gate, world.clock)
    calls = [
        service.complete_session(people.tutor, session_id, 45, RECAP)
        for service in (world.service, other) * 3
    ]
    views = await asyncio.wait_for(asyncio.gather(*calls), 60)
    assert {v["state"] for v in views} == {"completed"}
    assert await world.money() == (2, 6)
    assert "reopen" not in world.gate.names()
    assert world.gate.names().count("completed") == 1


async def test_admin_completes_only_after_every_rule_but_the_window(
    world: World, people: People
) -> None:
    session_id = await world.book()
    world.clock.set(START + timedelta(days=10))
    with pytest.raises(NotAccepted):
        await world.service.complete_session(people.admin, session_id, 45, RECAP)
    with pytest.raises(ClassroomError) as info:
        await world.service.complete_session(people.student, session_id, 45, RECAP)
    assert info.value.code == "forbidden"


# -- the sweep -------------------------------------------------------------------------------------
async def test_the_sweep_closes_the_books_on_unlogged_sessions(
    world: World, people: People
) -> None:
    never_accepted = await world.book(students=[people.student])
    met = await world.accepted(students=[people.student2], day=-1)
    await world.stay("tutor-1", "tutor", met, -1440, -1400)
    await world.stay("student-2", "student", met, -1438, -1402)
    end = START + timedelta(minutes=60)
    met_end = end - timedelta(days=1)
    assert await world.service.sweep(met_end + timedelta(hours=72)) == 0  # inside the window
    assert await world.service.sweep(met_end + timedelta(hours=72, minutes=1)) == 1
    assert await world.service.sweep(end + timedelta(hours=72)) == 0
    assert await world.service.sweep(end + timedelta(hours=72, minutes=1)) == 1
    a = await world.service.get_session(people.admin, never_accepted)
    b = await world.service.get_session(people.admin, met)
    assert (a["state"], a["state_reason"]) == ("missed", "logging_window_passed")
    assert (b["state"], b["state_reason"]) == ("awaiting_support", "logging_window_passed")
    assert b["history"][-1]["by"] is None  # the system
    assert await world.service.sweep(end + timedelta(hours=80)) == 0  # harmless twice
    # Support logs the session that happened.
    world.clock.set(end + timedelta(hours=90))
    done = await world.service.complete_session(people.admin, met, 35, RECAP)
    assert done["state"] == "completed"
    assert done["needs_review"] is False
    with pytest.raises(ClassroomError):
        await world.service.complete_session(people.tutor, never_accepted, 35, RECAP)


async def test_a_missed_session_never_logged_can_be_logged_by_support(
    world: World, people: People
) -> None:
    session_id = await world.accepted(mode="in_person")
    end = START + timedelta(minutes=60)
    assert await world.service.sweep(end + timedelta(hours=73)) == 1
    assert await world.state(session_id) == "missed"
    world.clock.set(end + timedelta(hours=74))
    with pytest.raises(InvalidState):
        await world.service.complete_session(people.tutor, session_id, 60, RECAP)
    done = await world.service.complete_session(people.admin, session_id, 60, RECAP)
    assert done["state"] == "completed"


async def test_concurrent_sweeps_change_each_session_once(
    world: World, people: People, db: Database, database_url: str
) -> None:
    for day, student in enumerate((people.student, people.student2)):
        await world.accepted(students=[student], mode="in_person", day=day)
    other = SessionService(db, make_settings(database_url), world.gate, world.clock)
    when = START + timedelta(days=5)
    counts = await asyncio.wait_for(
        asyncio.gather(world.service.sweep(when), other.sweep(when), world.service.sweep(when)), 30
    )
    assert sum(counts) == 2


async def test_the_background_sweep_runs_and_stops(world: World, people: People) -> None:
    session_id = await world.accepted(mode="in_person")
    world.clock.set(START + timedelta(days=5))
    swept = asyncio.Event()
    original: Callable[..., Any] = world.service.sweep

    async def sweep(now: datetime | None = None) -> int:
        result: int = await original(now)
        swept.set()
        return result

    world.service.sweep = sweep  # type: ignore[method-assign]
    async with sweeping(world.service, interval=3600):
        await asyncio.wait_for(swept.wait(), 10)
    assert await world.state(session_id) == "missed"
