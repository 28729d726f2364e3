"""Completing a session over HTTP: the rules, the classroom gate, money exactly once, reviews."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from classroom.app import ROOMS
from classroom.db.engine import Database
from classroom.db.tables import Attendance, Invoice, LedgerEntry
from classroom.errors import ClassroomClosed
from classroom.rooms.model import Member
from classroom.sessions.base import system_clock
from tests.conftest import AppFactory, People
from tests.integration.sessions_support import RECAP, RECAP_150, Api, recap

MONDAY = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
async def api(client: TestClient[Any, Any], people: People) -> Api:
    api = Api(client, people)
    await api.known(people.tutor, people.tutor2, people.student, people.student2, people.parent)
    return api


async def _money(db: Database, session_id: str) -> tuple[int, int]:
    async with db.reader() as tx:
        invoices = await tx.scalar(
            select(func.count(Invoice.id)).where(Invoice.session_id == session_id)
        )
        entries = await tx.scalar(
            select(func.count(LedgerEntry.id)).where(LedgerEntry.session_id == session_id)
        )
    return int(invoices or 0), int(entries or 0)


async def test_done_when_series_accept_complete_invoice_balance_review(
    make_client: AppFactory, people: People, db: Database
) -> None:
    """The issue's story, through HTTP alone: a recurring series, one booking accepted,
    completed with 45 minutes and a 150-character recap; invoice, balance and review right."""
    api = Api(await make_client(platform_fee_percent=10), people)
    await api.known(people.tutor, people.student, people.parent)
    await api.call(
        "PUT",
        "/api/tutors/me",
        people.tutor,
        {"hourly_rate_cents": 6000, "timezone": "Europe/London", "availability": []},
    )
    series = await api.book(
        MONDAY, 60, topic="Quadratics", recurrence={"frequency": "weekly", "count": 4}
    )
    first = series["sessions"][0]["id"]
    path = f"/api/sessions/{first}"
    await api.post(f"{path}/accept", people.student)

    api.clock.set(MONDAY + timedelta(minutes=50))
    details = await api.get(path, people.tutor)
    assert details["can_complete"] is True
    text = RECAP_150
    done = await api.post(f"{path}/complete", people.tutor, {"minutes": 45, "recap": text})
    assert done["state"] == "completed"
    assert done["logged_minutes"] == 45
    assert done["recap"] == text
    assert done["completed_by"] == {"id": "tutor-1", "name": "Tina Tutor"}
    assert done["can_complete"] is False
    assert done["needs_review"] is True  # 45 minutes logged, no time together in the classroom
    assert [(i["student"]["id"], i["amount_cents"]) for i in done["invoices"]] == [
        ("student-1", 4500)
    ]

    invoice = (await api.get(f"{path}/invoice", people.student))["invoices"][0]
    assert invoice["minutes"] == 45
    assert invoice["rate_cents"] == 6000
    assert invoice["amount_cents"] == 4500  # 6000 × 45 / 60
    assert invoice["fee_cents"] == 450
    assert invoice["tutor_earning_cents"] == 4050
    assert invoice["session"] == {"starts_at": "2030-03-04T17:00:00Z", "topic": "Quadratics"}
    assert (await api.get(f"{path}/invoice", people.parent))["invoices"] == [invoice]
    assert (await api.get("/api/invoices", people.student))["invoices"] == [invoice]
    assert (await api.get("/api/invoices", people.parent))["invoices"] == [invoice]
    assert (await api.get("/api/invoices", people.admin))["invoices"] == [invoice]
    assert (await api.get("/api/invoices", people.student2))["invoices"] == []

    balance = await api.get("/api/me/balance", people.tutor)
    assert balance["balance_cents"] == 4050
    assert [(e["kind"], e["amount_cents"]) for e in balance["entries"]] == [("earning", 4050)]
    await api.error("GET", "/api/me/balance", people.student, None, 403, "forbidden")

    review = await api.post(
        f"{path}/review", people.student, {"rating": 5, "text": "Clear and patient."}, status=201
    )
    assert review["rating"] == 5
    assert review["text"] == "Clear and patient."
    seen = await api.get(path, people.parent)
    assert [(r["rating"], r["student"]["id"]) for r in seen["reviews"]] == [(5, "student-1")]
    assert seen["recap"] == text
    assert "notes" not in seen
    profile = await api.get("/api/tutors/tutor-1", people.student)
    assert profile["rating"] == {"average": 5.0, "count": 1}

    # The other bookings of the series are untouched.
    listed = (await api.get("/api/sessions", people.student))["sessions"]
    assert [s["state"] for s in listed] == ["completed", "requested", "requested", "requested"]
    assert await _money(db, first) == (1, 3)


async def test_completion_rules_over_http(api: Api, people: People) -> None:
    session = await api.book(MONDAY, 60)
    path = f"/api/sessions/{session['id']}"
    good = {"minutes": 45, "recap": RECAP}
    api.clock.set(MONDAY + timedelta(minutes=60))
    await api.error("POST", f"{path}/complete", people.tutor, good, 409, "not_accepted")
    await api.post(f"{path}/accept", people.student)
    for body, status, code in [
        ({"minutes": 45, "recap": recap(149)}, 422, "recap_too_short"),
        ({"minutes": 45, "recap": "  " + recap(149) + "\n\n"}, 422, "recap_too_short"),
        ({"minutes": 4, "recap": RECAP}, 422, "invalid_minutes"),
        ({"minutes": 95, "recap": RECAP}, 422, "invalid_minutes"),
        ({"minutes": 47, "recap": RECAP}, 422, "invalid_minutes"),
        ({"minutes": 0, "recap": RECAP}, 422, "invalid_minutes"),
        ({"minutes": "45", "recap": RECAP}, 400, "invalid_payload"),
        ({"minutes": 45.5, "recap": RECAP}, 400, "invalid_payload"),
        ({"minutes": 45}, 400, "invalid_payload"),
        ({"minutes": 45, "recap": RECAP, "tip": 5}, 400, "invalid_payload"),
        ({"minutes": 45, "recap": "r" * 5001}, 400, "invalid_payload"),
    ]:
        await api.error("POST", f"{path}/complete", people.tutor, body, status, code)
    for who in (people.student, people.parent):
        await api.error("POST", f"{path}/complete", who, good, 403, "forbidden")
    await api.error("POST", f"{path}/complete", people.tutor2, good, 404, "not_found")
    # Nothing was written by any refusal.
    details = await api.get(path, people.tutor)
    assert details["state"] == "accepted" and details["invoices"] == []
    done = await api.post(f"{path}/complete", people.tutor, {"minutes": 90, "recap": RECAP})
    assert done["logged_minutes"] == 90


async def test_a_session_cannot_be_completed_before_it_starts(api: Api, people: People) -> None:
    session = await api.booked_and_accepted(MONDAY)
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY - timedelta(minutes=1))
    await api.error(
        "POST",
        f"{path}/complete",
        people.tutor,
        {"minutes": 45, "recap": RECAP},
        409,
        "invalid_state",
    )
    api.clock.set(MONDAY)
    await api.post(f"{path}/complete", people.tutor, {"minutes": 45, "recap": RECAP})


@pytest.mark.parametrize(
    ("after_end", "allowed"),
    [(timedelta(hours=71, minutes=59), True), (timedelta(hours=72, minutes=1), False)],
)
async def test_the_72_hour_window(
    api: Api, people: People, after_end: timedelta, allowed: bool
) -> None:
    session = await api.booked_and_accepted(MONDAY, duration=60)
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY + timedelta(minutes=60) + after_end)
    body = {"minutes": 60, "recap": RECAP}
    if allowed:
        assert (await api.post(f"{path}/complete", people.tutor, body))["state"] == "completed"
        return
    error = await api.error(
        "POST", f"{path}/complete", people.tutor, body, 409, "grace_period_expired"
    )
    assert error["deadline"] == "2030-03-07T18:00:00+00:00"
    # Support may still log it.
    done = await api.post(f"{path}/complete", people.admin, body)
    assert done["completed_by"]["id"] == "admin-1"


async def test_the_window_runs_from_the_classrooms_last_leave(
    api: Api, people: People, db: Database
) -> None:
    session = await api.booked_and_accepted(MONDAY, duration=60)
    async with db.transaction() as tx:
        tx.add(
            Attendance(
                session_id=session["id"],
                user_id="tutor-1",
                role="tutor",
                joined_at=MONDAY,
                left_at=MONDAY + timedelta(minutes=85),  # stayed 25 minutes past the end
                leave_reason="clean",
            )
        )
    api.clock.set(MONDAY + timedelta(minutes=60, hours=72, seconds=60))  # 72h01m after the end
    view = await api.get(f"/api/sessions/{session['id']}", people.tutor)
    assert view["logging_deadline"] == "2030-03-07T18:25:00Z"
    await api.post(
        f"/api/sessions/{session['id']}/complete", people.tutor, {"minutes": 60, "recap": RECAP}
    )


async def test_no_completion_while_a_student_remains_in_the_classroom(
    api: Api, people: People, db: Database
) -> None:
    session = await api.booked_and_accepted(MONDAY)
    path = f"/api/sessions/{session['id']}"
    rooms = api.client.app[ROOMS]
    await rooms.join(session["id"], Member("tutor-1", "Tina Tutor", "tutor"), "c-tutor")
    await rooms.join(session["id"], Member("student-1", "Sara Student", "student"), "c-student")
    api.clock.set(MONDAY + timedelta(minutes=55))
    view = await api.get(path, people.tutor)
    assert {p["user_id"] for p in view["presence"]} == {"tutor-1", "student-1"}
    assert view["presence_version"] == 2
    assert view["can_complete"] is False
    body = {"minutes": 45, "recap": RECAP}
    await api.error("POST", f"{path}/complete", people.tutor, body, 409, "participants_remain")
    assert await _money(db, session["id"]) == (0, 0)
    assert (await api.get(path, people.tutor))["state"] == "accepted"
    # The refusal did not close the classroom: the student can come back.
    await rooms.leave(session["id"], "student-1", "c-student")
    await rooms.join(session["id"], Member("student-1", "Sara Student", "student"), "c-student")
    await rooms.leave(session["id"], "student-1", "c-student")
    assert (await api.get(path, people.tutor))["can_complete"] is True
    assert (await api.get(path, people.student))["can_complete"] is False
    done = await api.post(f"{path}/complete", people.tutor, body)  # the tutor may still be in
    assert done["state"] == "completed"
    assert done["presence"] == []  # the classroom was closed
    with pytest.raises(ClassroomClosed):
        await rooms.join(session["id"], Member("student-1", "Sara Student", "student"), "c-2")


async def test_needs_review_and_the_suggestion_come_from_attendance(
    api: Api, people: People, db: Database
) -> None:
    session = await api.booked_and_accepted(MONDAY, duration=60)
    async with db.transaction() as tx:
        for user, role, start, end in [
            ("tutor-1", "tutor", 0, 45),
            ("student-1", "student", 5, 36),  # together 31 minutes
        ]:
            tx.add(
                Attendance(
                    session_id=session["id"],
                    user_id=user,
                    role=role,
                    joined_at=MONDAY + timedelta(minutes=start),
                    left_at=MONDAY + timedelta(minutes=end),
                    leave_reason="clean",
                )
            )
    api.clock.set(MONDAY + timedelta(minutes=50))
    path = f"/api/sessions/{session['id']}"
    view = await api.get(path, people.tutor)
    assert view["attendance"] == {
        "participants": [
            {"user_id": "tutor-1", "name": "Tina Tutor", "role": "tutor", "seconds": 2700},
            {"user_id": "student-1", "name": "Sara Student", "role": "student", "seconds": 1860},
        ],
        "overlap_seconds": 1860,
        "suggested_minutes": 35,
    }
    done = await api.post(f"{path}/complete", people.tutor, {"minutes": 40, "recap": RECAP})
    assert done["needs_review"] is False  # 40 <= 31 + 10
    other = await api.booked_and_accepted(MONDAY + timedelta(days=1), duration=60)
    api.clock.set(MONDAY + timedelta(days=1, minutes=60))
    flagged = await api.post(
        f"/api/sessions/{other['id']}/complete", people.tutor, {"minutes": 15, "recap": RECAP}
    )
    assert flagged["needs_review"] is True  # 15 > 0 + 10
    assert flagged["state"] == "completed"  # flagged, still completed


async def test_in_person_sessions_complete_without_the_classroom(api: Api, people: People) -> None:
    session = await api.booked_and_accepted(MONDAY, duration=90, mode="in_person")
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY + timedelta(minutes=90))
    view = await api.get(path, people.tutor)
    assert view["classroom"] is None
    assert view["attendance"]["suggested_minutes"] == 90
    assert view["can_complete"] is True
    done = await api.post(f"{path}/complete", people.tutor, {"minutes": 90, "recap": RECAP})
    assert done["needs_review"] is False


async def test_a_repeated_completion_answers_the_same_and_bills_once(
    api: Api, people: People, db: Database
) -> None:
    session = await api.booked_and_accepted(MONDAY)
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY + timedelta(minutes=60))
    body = {"minutes": 45, "recap": RECAP}
    first = await api.post(f"{path}/complete", people.tutor, body)
    again = await api.post(f"{path}/complete", people.tutor, {**body, "recap": f"  {RECAP}\n"})
    assert again["invoices"] == first["invoices"]
    assert again["completed_at"] == first["completed_at"]
    error = await api.error(
        "POST", f"{path}/complete", people.tutor, {**body, "minutes": 50}, 409, "already_completed"
    )
    assert error["logged_minutes"] == 45
    await api.error(
        "POST",
        f"{path}/complete",
        people.tutor,
        {**body, "recap": RECAP + "!"},
        409,
        "already_completed",
    )
    assert await _money(db, session["id"]) == (1, 3)


async def test_concurrent_completions_bill_exactly_once(
    api: Api, people: People, db: Database
) -> None:
    await api.call("PUT", "/api/tutors/me", people.tutor, {"hourly_rate_cents": 5000})
    session = await api.booked_and_accepted(MONDAY, students=[people.student, people.student2])
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY + timedelta(minutes=60))
    body = {"minutes": 45, "recap": RECAP}

    async def attempt() -> tuple[int, dict[str, Any]]:
        response = await api.client.post(
            f"{path}/complete", json=body, headers=people.headers(people.tutor)
        )
        return response.status, await response.json()

    results = await asyncio.wait_for(asyncio.gather(*(attempt() for _ in range(8))), 60)
    assert [status for status, _ in results] == [200] * 8
    assert len({tuple(i["id"] for i in data["invoices"]) for _, data in results}) == 1
    assert await _money(db, session["id"]) == (2, 6)  # two students, three entries each
    balance = await api.get("/api/me/balance", people.tutor)
    assert balance["balance_cents"] == 2 * 3750
    async with db.reader() as tx:
        total = await tx.scalar(
            select(func.sum(LedgerEntry.amount_cents)).where(
                LedgerEntry.session_id == session["id"]
            )
        )
    assert total == 0  # every charge matched by earning and fee
    history = (await api.get(f"{path}/history", people.tutor))["history"]
    assert [h["to"] for h in history].count("completed") == 1


async def test_concurrent_different_completions_one_wins_the_rest_conflict(
    api: Api, people: People, db: Database
) -> None:
    session = await api.booked_and_accepted(MONDAY)
    path = f"/api/sessions/{session['id']}"
    api.clock.set(MONDAY + timedelta(minutes=60))

    async def attempt(minutes: int) -> int:
        response = await api.client.post(
            f"{path}/complete",
            json={"minutes": minutes, "recap": RECAP},
            headers=people.headers(people.tutor),
        )
        return response.status

    statuses = await asyncio.wait_for(
        asyncio.gather(*(attempt(m) for m in (30, 35, 40, 45, 50))), 60
    )
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    assert await _money(db, session["id"]) == (1, 3)


async def test_reviews(api: Api, people: People) -> None:
    session = await api.booked_and_accepted(MONDAY, students=[people.student, people.student2])
    path = f"/api/sessions/{session['id']}"
    await api.error("POST", f"{path}/review", people.student, {"rating": 5}, 409, "invalid_state")
    await api.error("GET", f"{path}/invoice", people.student, None, 404, "not_found")
    api.clock.set(MONDAY + timedelta(minutes=60))
    await api.post(f"{path}/complete", people.tutor, {"minutes": 60, "recap": RECAP})
    for body in (
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"rating": 4.5},
        {},
        {"rating": 5, "text": "t" * 5001},
    ):
        await api.error("POST", f"{path}/review", people.student, body, 400, "invalid_payload")
    for who in (people.tutor, people.parent, people.admin):
        await api.error("POST", f"{path}/review", who, {"rating": 5}, 403, "forbidden")
    await api.error("POST", f"{path}/review", people.tutor2, {"rating": 5}, 404, "not_found")
    review = await api.post(f"{path}/review", people.student, {"rating": 4}, status=201)
    assert review["text"] is None
    await api.error(
        "POST", f"{path}/review", people.student, {"rating": 5}, 409, "already_reviewed"
    )
    await api.post(f"{path}/review", people.student2, {"rating": 2, "text": " ok "}, status=201)
    # Each student sees their own invoice; the tutor sees both.
    assert [
        i["student"]["id"] for i in (await api.get(f"{path}/invoice", people.student2))["invoices"]
    ] == ["student-2"]
    assert len((await api.get(f"{path}/invoice", people.tutor))["invoices"]) == 2
    assert len((await api.get(path, people.student))["invoices"]) == 1
    assert (await api.get("/api/tutors/tutor-1", people.student))["rating"] == {
        "average": 3.0,
        "count": 2,
    }


async def test_done_when_on_the_real_clock(
    make_client: AppFactory, people: People, db: Database
) -> None:
    """The same story without moving time: a series whose first lesson was two hours ago."""
    api = Api(await make_client(platform_fee_percent=10), people)
    api.service.clock = system_clock
    await api.known(people.tutor, people.student)
    await api.call("PUT", "/api/tutors/me", people.tutor, {"hourly_rate_cents": 6000})
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    series = await api.book(start, 60, recurrence={"frequency": "weekly", "count": 3})
    first = series["sessions"][0]["id"]
    await api.post(f"/api/sessions/{first}/accept", people.student)
    body = {"minutes": 45, "recap": RECAP_150}
    done = await api.post(f"/api/sessions/{first}/complete", people.tutor, body)
    assert (done["state"], done["logged_minutes"]) == ("completed", 45)
    invoice = (await api.get(f"/api/sessions/{first}/invoice", people.student))["invoices"][0]
    assert (invoice["amount_cents"], invoice["fee_cents"]) == (4500, 450)
    assert (await api.get("/api/me/balance", people.tutor))["balance_cents"] == 4050
    await api.post(f"/api/sessions/{first}/review", people.student, {"rating": 5}, status=201)
    assert (await api.get(f"/api/sessions/{first}", people.tutor))["reviews"][0]["rating"] == 5
