"""Removing a participant from a group session, against a real server with real Socket.IO
clients, on SQLite and PostgreSQL: disconnected with ``removed``, refused on rejoin, not billed,
no longer blocking completion."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import Attendance, Invoice, SessionParticipant
from tests.conftest import People
from tests.integration.absence_support import Http, outbox
from tests.support import RECAP, Connect, seed_session


@pytest.fixture
async def server(make_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client()
    return client


@pytest.fixture
def http(server: TestClient[Any, Any], people: People) -> Http:
    return Http(server, people)


async def test_a_removed_student_is_taken_out_refused_and_not_billed(
    db: Database, people: People, http: Http, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student, people.student2])
    tutor, sara, sid = (
        await connect(people.tutor),
        await connect(people.student),
        await connect(people.student2),
    )
    sid_details = await connect(people.student2)
    for client in (tutor, sara, sid):
        assert (await client.call("join", {"session_id": session_id}))["ok"]
    assert (await sid_details.call("watch", {"session_id": session_id}))["ok"]
    await tutor.wait_presence(
        {"tutor-1": "present", "student-1": "present", "student-2": "present"}
    )

    for payload in (None, {}, {"user_id": 7}, {"user_id": "x" * 65}):
        refused = await tutor.call("remove_participant", payload)
        assert refused["error"]["code"] == "invalid_payload", refused
    assert (await sara.call("remove_participant", {"user_id": "student-2"}))["error"]["code"] == (
        "forbidden"
    )
    ack = await tutor.call("remove_participant", {"user_id": "student-2", "reason": "Disruptive"})
    assert ack["ok"], ack
    removed = {s["id"]: s for s in ack["session"]["students"]}["student-2"]
    assert removed["removed"] is True and removed["acceptance"] == "removed"

    assert await sid.wait_for("removed", lambda e: True) == {"session_id": session_id}
    assert await sid_details.wait_for("removed", lambda e: True) == {"session_id": session_id}
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})
    # Out of the classroom for good: events there are refused, and so is a rejoin.
    assert (await sid.call("log_time_and_leave", {"minutes": 30, "recap": RECAP}))["error"][
        "code"
    ] == "not_in_classroom"
    rejoin = await sid.call("join", {"session_id": session_id})
    assert rejoin["error"]["code"] == "removed"
    fresh = await connect(people.student2)
    assert (await fresh.call("join", {"session_id": session_id}))["error"]["code"] == "removed"
    async with db.reader() as tx:
        reasons = (
            await tx.execute(
                select(Attendance.leave_reason).where(
                    Attendance.session_id == session_id, Attendance.user_id == "student-2"
                )
            )
        ).scalars()
        assert list(reasons) == ["removed"]

    # The tutor completes for the one who stayed; only she is billed.
    refused = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert refused["error"]["code"] == "participants_remain"
    assert (await sara.call("leave_call", {}))["ok"]
    done = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert done["ok"], done
    async with db.reader() as tx:
        billed = (
            await tx.execute(select(Invoice.student_id).where(Invoice.session_id == session_id))
        ).scalars()
        assert list(billed) == ["student-1"]
    details = await http.get(f"/api/sessions/{session_id}", people.student2)
    assert details["state"] == "completed" and details["invoices"] == []
    history = [h["detail"] for h in details["history"]]
    assert "removed Sid Student: Disruptive" in history
    told = await outbox(db, "session.removed")
    assert [r.subject_id for r in told] == ["student-2"]


async def test_removing_an_absent_student_lets_the_tutor_complete_over_http(
    db: Database, people: People, http: Http
) -> None:
    # Sid never answered the request: the session waits for everyone's acceptance.
    session_id = await seed_session(
        db,
        people.tutor,
        [people.student, people.student2],
        state="requested",
        acceptance="accepted",
    )
    async with db.transaction() as tx:
        row = await tx.get(SessionParticipant, (session_id, "student-2"))
        assert row is not None
        row.acceptance = "pending"
    base = f"/api/sessions/{session_id}"
    body = {"minutes": 45, "recap": RECAP}
    assert await http.error("POST", f"{base}/complete", people.tutor, body, 409) == "not_accepted"

    path = f"{base}/participants/student-2/remove"
    for who, status, code in (
        (people.student, 403, "forbidden"),
        (people.parent, 403, "forbidden"),
        (people.tutor2, 404, "not_found"),
    ):
        assert await http.error("POST", path, who, {}, status) == code
    view = await http.post(path, people.tutor, {"reason": "Never confirmed"})
    assert view["state"] == "accepted"  # everyone still booked has accepted
    assert (await http.post(path, people.tutor))["state"] == "accepted"  # a repeat
    completed = await http.post(f"{base}/complete", people.tutor, body)
    assert completed["state"] == "completed"
    assert [i["student"]["id"] for i in completed["invoices"]] == ["student-1"]


async def test_the_last_student_cannot_be_removed(db: Database, people: People, http: Http) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    base = f"/api/sessions/{session_id}/participants"
    assert await http.error("POST", f"{base}/student-1/remove", people.tutor, {}, 409) == (
        "last_participant"
    )
    assert await http.error("POST", f"{base}/student-9/remove", people.tutor, {}, 403) == (
        "not_a_participant"
    )
    assert await http.error("POST", f"{base}/student-1/remove", people.tutor, {"x": 1}, 400) == (
        "invalid_payload"
    )
    group = await seed_session(db, people.tutor2, [people.student, people.student2])
    path = f"/api/sessions/{group}/participants/student-2/remove"
    await http.post(path, people.tutor2)
    last = f"/api/sessions/{group}/participants/student-1/remove"
    assert await http.error("POST", last, people.tutor2, {}, 409) == "last_participant"
