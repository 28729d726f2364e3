"""The classroom against a real server with real Socket.IO clients, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from classroom.db.engine import Database
from classroom.db.tables import Attendance, Invoice, LedgerEntry, Session, utcnow
from tests.conftest import People
from tests.support import RECAP, Client, Connect, seed_session, statuses, wait_until


@pytest.fixture
async def server(make_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(reconnect_grace=1.0)
    return client


async def test_log_time_refused_while_student_present_then_completes(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor, student = await connect(people.tutor), await connect(people.student)

    ack = await tutor.call("join", {"session_id": session_id})
    assert ack["ok"], ack
    assert ack["session"]["id"] == session_id
    assert ack["session"]["state"] == "in_progress"
    assert isinstance(ack["ice_servers"], list)
    ack = await student.call("join", {"session_id": session_id})
    assert ack["ok"], ack
    assert statuses({"participants": ack["participants"]}) == {
        "tutor-1": "present",
        "student-1": "present",
    }
    # Everyone, including the one who joined, sees the change.
    await student.wait_presence({"tutor-1": "present", "student-1": "present"})
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})

    refused = await tutor.call("log_time_and_leave", {"minutes": 45, "recap": RECAP})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "participants_remain"
    # The tutor stays in the call.
    assert statuses(tutor.latest("presence"))["tutor-1"] == "present"

    assert (await student.call("leave_call", {}))["ok"]
    await tutor.wait_presence({"tutor-1": "present"})

    done = await tutor.call("log_time_and_leave", {"minutes": 45, "recap": RECAP})
    assert done["ok"], done
    assert done["session"]["state"] == "completed"
    async with db.reader() as tx:
        invoices = (
            (await tx.execute(select(Invoice).where(Invoice.session_id == session_id)))
            .scalars()
            .all()
        )
    assert [(i.student_id, i.minutes) for i in invoices] == [("student-1", 45)]

    again = await student.call("join", {"session_id": session_id})
    assert again["ok"] is False
    assert again["error"]["code"] == "classroom_closed"


async def test_leave_call_then_complete_over_http_with_can_complete_live(
    db: Database, people: People, connect: Connect, server: TestClient[Any, Any]
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor_call, details_page = await connect(people.tutor), await connect(people.tutor)
    student = await connect(people.student)
    assert (await tutor_call.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]

    left = await tutor_call.call("leave_call", {})
    assert left == {"ok": True, "can_complete": False}
    watch = await details_page.call("watch", {"session_id": session_id})
    assert watch["ok"] and watch["can_complete"] is False
    assert statuses(watch) == {"student-1": "present"}

    response = await server.get(f"/api/sessions/{session_id}", headers=people.headers(people.tutor))
    details = await response.json()
    assert details["can_complete"] is False
    assert [p["user_id"] for p in details["presence"]] == ["student-1"]

    refused = await server.post(
        f"/api/sessions/{session_id}/complete",
        json={"minutes": 45, "recap": RECAP},
        headers=people.headers(people.tutor),
    )
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "participants_remain"

    await student.call("leave_call", {})
    pushed = await details_page.wait_for("can_complete", lambda e: e["can_complete"] is True)
    assert pushed["session_id"] == session_id

    # A student coming back turns it off again, live.
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    await details_page.wait_for(
        "can_complete",
        lambda e: e["can_complete"] is False and e is details_page.latest("can_complete"),
    )
    await student.call("leave_call", {})
    await details_page.wait_for(
        "can_complete",
        lambda e: e["can_complete"] is True and e is details_page.latest("can_complete"),
    )

    response = await server.get(f"/api/sessions/{session_id}", headers=people.headers(people.tutor))
    assert (await response.json())["can_complete"] is True
    completed = await server.post(
        f"/api/sessions/{session_id}/complete",
        json={"minutes": 45, "recap": RECAP},
        headers=people.headers(people.tutor),
    )
    assert completed.status == 200, await completed.text()
    closed = await details_page.wait_for("classroom_closed", lambda e: True)
    assert closed["session_id"] == session_id
    refused_join = await student.call("join", {"session_id": session_id})
    assert refused_join["error"]["code"] == "classroom_closed"


async def test_abrupt_drop_shows_reconnecting_then_leaves_after_grace(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor, student = await connect(people.tutor), await connect(people.student)
    await tutor.call("join", {"session_id": session_id})
    await student.call("join", {"session_id": session_id})
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})

    await student.kill_transport()
    await tutor.wait_presence({"tutor-1": "present", "student-1": "reconnecting"})
    # Still counts as present for the gate.
    refused = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert refused["error"]["code"] == "participants_remain"
    await tutor.wait_presence({"tutor-1": "present"}, timeout=5)

    async def reasons() -> list[str | None]:
        async with db.reader() as tx:
            rows = await tx.execute(
                select(Attendance.leave_reason).where(
                    Attendance.session_id == session_id, Attendance.user_id == "student-1"
                )
            )
            return list(rows.scalars())

    # the leave is announced while its record is written: the record follows within moments
    async def recorded() -> bool:
        return await reasons() != [None]

    await wait_until(recorded, timeout=5)
    assert await reasons() == ["timeout"]


async def test_reconnecting_inside_the_grace_shows_no_leave(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor, student = await connect(people.tutor), await connect(people.student)
    await tutor.call("join", {"session_id": session_id})
    await student.call("join", {"session_id": session_id})
    await student.kill_transport()
    await tutor.wait_presence({"tutor-1": "present", "student-1": "reconnecting"})

    back = await connect(people.student)
    assert (await back.call("join", {"session_id": session_id}))["ok"]
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})
    seen = [statuses(s) for s in tutor.presence()]
    assert all(
        "student-1" in s for s in seen[seen.index({"tutor-1": "present", "student-1": "present"}) :]
    )
    versions = [s["version"] for s in tutor.presence()]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    async with db.reader() as tx:
        stays = (
            (
                await tx.execute(
                    select(Attendance).where(
                        Attendance.session_id == session_id, Attendance.user_id == "student-1"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(stays) == 1 and stays[0].left_at is None


async def test_two_tabs_of_one_student_are_one_participant(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await connect(people.tutor)
    tab1, tab2 = await connect(people.student), await connect(people.student)
    await tutor.call("join", {"session_id": session_id})
    await tab1.call("join", {"session_id": session_id})
    ack = await tab2.call("join", {"session_id": session_id})
    assert [p["user_id"] for p in ack["participants"]] == ["tutor-1", "student-1"]
    await tab1.call("leave_call", {})
    refused = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert refused["error"]["code"] == "participants_remain"
    await tab2.close()  # a clean disconnect is a leave
    await tutor.wait_presence({"tutor-1": "present"})


async def test_refusals(db: Database, people: People, connect: Connect) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    other_session = await seed_session(db, people.tutor2, [people.student2])
    # A student of another session cannot even see this one.
    stranger = await connect(people.student2)
    ack = await stranger.call("join", {"session_id": session_id})
    assert ack["error"]["code"] == "not_found"
    # Parents and admins may see it, but the classroom is for the tutor and the students.
    for who in (people.parent, people.admin):
        viewer = await connect(who)
        assert (await viewer.call("join", {"session_id": session_id}))["error"]["code"] == (
            "not_a_participant"
        )
    missing = await stranger.call("join", {"session_id": "no-such-session"})
    assert missing["error"]["code"] == "not_found"
    assert (await stranger.call("join", {"session_id": other_session}))["ok"]

    student = await connect(people.student)
    not_tutor = await student.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert not_tutor["ok"] is False and not_tutor["error"]["code"] == "not_in_classroom"
    await student.call("join", {"session_id": session_id})
    not_tutor = await student.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert not_tutor["error"]["code"] == "forbidden"


async def test_tutor_starting_a_session_not_accepted_marks_it_missed(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(
        db, people.tutor, [people.student], state="requested", acceptance="pending"
    )
    student = await connect(people.student)
    assert (await student.call("join", {"session_id": session_id}))["error"]["code"] == (
        "not_accepted"
    )
    tutor = await connect(people.tutor)
    ack = await tutor.call("join", {"session_id": session_id})
    assert ack["error"]["code"] == "not_accepted"
    async with db.reader() as tx:
        session = await tx.get(Session, session_id)
    assert session is not None and session.state == "missed"


async def test_classroom_not_open_yet(db: Database, people: People, connect: Connect) -> None:
    session_id = await seed_session(
        db, people.tutor, [people.student], starts_at=utcnow() + timedelta(hours=2)
    )
    tutor = await connect(people.tutor)
    assert (await tutor.call("join", {"session_id": session_id}))["error"]["code"] == (
        "classroom_not_open"
    )


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("join", None),
        ("join", "abc"),
        ("join", {}),
        ("join", {"session_id": 5}),
        ("join", {"session_id": "x" * 65}),
        ("join", [1, 2]),
        ("watch", {"session_id": None}),
        ("unwatch", 12),
        ("leave_call", "x"),
        ("log_time_and_leave", {"minutes": "45", "recap": RECAP}),
        ("log_time_and_leave", {"recap": RECAP}),
        ("log_time_and_leave", {"minutes": 45}),
        ("log_time_and_leave", None),
    ],
)
async def test_malformed_payloads_get_invalid_payload(
    db: Database, people: People, connect: Connect, event: str, payload: Any
) -> None:
    client = await connect(people.tutor)
    ack = await client.call(event, payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid_payload", ack
    assert ack["error"]["message"]


async def test_log_time_validation_errors_keep_the_tutor_in(
    db: Database, people: People, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await connect(people.tutor)
    await tutor.call("join", {"session_id": session_id})
    bad_minutes = await tutor.call("log_time_and_leave", {"minutes": 47, "recap": RECAP})
    assert bad_minutes["error"]["code"] == "invalid_minutes"
    short = await tutor.call("log_time_and_leave", {"minutes": 45, "recap": "Too short."})
    assert short["error"]["code"] == "recap_too_short"
    assert statuses(tutor.latest("presence")) == {"tutor-1": "present"}


async def test_join_racing_completion_never_both(
    db: Database, people: People, connect: Connect
) -> None:
    tutor, student = await connect(people.tutor), await connect(people.student)
    outcomes = set()
    for _ in range(12):
        session_id = await seed_session(db, people.tutor, [people.student])
        assert (await tutor.call("join", {"session_id": session_id}))["ok"]
        join, complete = await asyncio.gather(
            student.call("join", {"session_id": session_id}),
            tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP}),
        )
        joined, completed = join["ok"], complete["ok"]
        assert joined != completed, (join, complete)
        if completed:
            assert join["error"]["code"] == "classroom_closed"
        else:
            assert complete["error"]["code"] == "participants_remain"
            await student.call("leave_call", {})
            await tutor.call("leave_call", {})
        async with db.reader() as tx:
            session = await tx.get(Session, session_id)
            charges = await tx.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.session_id == session_id, LedgerEntry.kind == "charge")
            )
        assert session is not None
        assert (session.state == "completed") == completed
        assert charges == (1 if completed else 0)
        outcomes.add(completed)


async def test_hard_cap_closes_the_classroom(
    db: Database, people: People, make_client: Any
) -> None:
    server = await make_client(classroom_hard_cap_minutes=0)
    starts = utcnow() - timedelta(minutes=5) + timedelta(seconds=2)
    session_id = await seed_session(
        db, people.tutor, [people.student], starts_at=starts, duration_minutes=5
    )
    url = str(server.make_url("/"))
    tutor = await Client().connect(url, people.token(people.tutor))
    student = await Client().connect(url, people.token(people.student))
    try:
        assert (await tutor.call("join", {"session_id": session_id}))["ok"]
        assert (await student.call("join", {"session_id": session_id}))["ok"]
        closed = await student.wait_for("classroom_closed", lambda e: True, timeout=10)
        assert closed == {"session_id": session_id, "reason": "hard_cap"}
        again = await student.call("join", {"session_id": session_id})
        assert again["error"]["code"] == "classroom_closed"
        async with db.reader() as tx:
            reasons = (
                (
                    await tx.execute(
                        select(Attendance.leave_reason).where(Attendance.session_id == session_id)
                    )
                )
                .scalars()
                .all()
            )
        assert sorted(reasons) == ["closed", "closed"]
    finally:
        await tutor.close()
        await student.close()


async def test_shutdown_waits_for_the_disconnects_under_way(
    db: Database, people: People, connect: Connect, server: TestClient[Any, Any]
) -> None:
    """A disconnect's presence update still under way when the server shuts down finishes
    before the stores it needs are closed (namespace.close waits for it, bounded), and is not
    lost when the connection's handler is cancelled (the test server cancels it)."""
    from classroom.app import NAMESPACE, ROOMS

    session_id = await seed_session(db, people.tutor, [people.student])
    student = await connect(people.student)
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    presence = server.app[ROOMS].presence
    leaving, release = asyncio.Event(), asyncio.Event()
    original = presence.leave

    async def slow_leave(*args: Any) -> Any:
        leaving.set()
        await release.wait()
        return await original(*args)

    presence.leave = slow_leave  # type: ignore[method-assign]
    closed = asyncio.ensure_future(student.close())  # a clean leave, held in the presence store
    await asyncio.wait_for(leaving.wait(), 10)
    closing = asyncio.ensure_future(server.app[NAMESPACE].close())
    for _ in range(20):  # passes of the event loop: the held leave cannot finish meanwhile
        await asyncio.sleep(0)
    assert not closing.done()  # the shutdown waits for the leave under way
    release.set()
    await asyncio.wait_for(asyncio.gather(closing, closed), 10)
    snapshot = await server.app[ROOMS].snapshot(session_id)
    assert snapshot.participants == ()  # the leave was recorded before the close finished
