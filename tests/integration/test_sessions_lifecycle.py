"""A booking's life over HTTP: accept, decline, reschedule, cancel, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import People
from tests.integration.sessions_support import Api

MONDAY = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


@pytest.fixture
async def api(client: TestClient[Any, Any], people: People) -> Api:
    api = Api(client, people)
    await api.known(people.tutor, people.tutor2, people.student, people.student2, people.parent)
    return api


async def test_accept_makes_a_one_to_one_session_accepted(api: Api, people: People) -> None:
    session = await api.book(MONDAY)
    path = f"/api/sessions/{session['id']}"
    accepted = await api.post(f"{path}/accept", people.student)
    assert accepted["state"] == "accepted"
    assert accepted["students"][0]["acceptance"] == "accepted"
    assert accepted["students"][0]["responded_at"] == "2030-03-04T12:00:00Z"
    again = await api.post(f"{path}/accept", people.student)  # a retry
    assert again["state"] == "accepted"
    history = (await api.get(f"{path}/history", people.parent))["history"]
    assert [(h["from"], h["to"], h["by"]["id"]) for h in history] == [
        (None, "requested", "tutor-1"),
        ("requested", "accepted", "student-1"),
    ]


async def test_only_a_booked_student_answers(api: Api, people: People) -> None:
    session = await api.book(MONDAY)
    path = f"/api/sessions/{session['id']}"
    for action in ("accept", "decline"):
        for who in (people.tutor, people.parent, people.admin):
            await api.error("POST", f"{path}/{action}", who, None, 403, "forbidden")
        await api.error("POST", f"{path}/{action}", people.student2, None, 404, "not_found")
    await api.error("POST", f"{path}/accept", people.student, {"extra": 1}, 400, "invalid_payload")
    assert (await api.get(path, people.tutor))["state"] == "requested"


async def test_a_group_session_is_accepted_once_everyone_has(api: Api, people: People) -> None:
    session = await api.book(MONDAY, students=[people.student, people.student2])
    path = f"/api/sessions/{session['id']}"
    first = await api.post(f"{path}/accept", people.student)
    assert first["state"] == "requested"
    second = await api.post(f"{path}/accept", people.student2)
    assert second["state"] == "accepted"


async def test_declining(api: Api, people: People) -> None:
    single = await api.book(MONDAY)
    declined = await api.post(f"/api/sessions/{single['id']}/decline", people.student)
    assert declined["state"] == "declined"
    await api.post(f"/api/sessions/{single['id']}/decline", people.student)  # a retry
    await api.error(
        "POST", f"/api/sessions/{single['id']}/accept", people.student, None, 409, "invalid_state"
    )
    # In a group, the decliner leaves and the others carry on.
    group = await api.book(MONDAY + timedelta(days=1), students=[people.student, people.student2])
    path = f"/api/sessions/{group['id']}"
    await api.post(f"{path}/accept", people.student2)
    view = await api.post(f"{path}/decline", people.student)
    assert view["state"] == "accepted"
    assert {s["id"]: (s["acceptance"], s["removed"]) for s in view["students"]} == {
        "student-1": ("declined", True),
        "student-2": ("accepted", False),
    }
    # The student who declined still sees it, but cannot act on it any more.
    await api.get(path, people.student)
    await api.error("POST", f"{path}/accept", people.student, None, 403, "forbidden")
    await api.error("POST", f"{path}/cancel", people.student, {}, 403, "forbidden")
    # An accepted session is cancelled, not declined.
    await api.error("POST", f"{path}/decline", people.student2, None, 409, "invalid_state")


async def test_reschedule_moves_one_booking_and_asks_again(api: Api, people: People) -> None:
    session = await api.booked_and_accepted(MONDAY)
    path = f"/api/sessions/{session['id']}"
    moved = await api.post(
        f"{path}/reschedule",
        people.tutor,
        {"starts_at": "2030-03-05T18:00:00+01:00", "duration_minutes": 45},
    )
    assert moved["starts_at"] == "2030-03-05T17:00:00Z"
    assert moved["duration_minutes"] == 45
    assert moved["state"] == "requested"
    assert moved["students"][0]["acceptance"] == "pending"
    assert moved["history"][-1]["detail"] == (
        "rescheduled from 2030-03-04T17:00:00Z to 2030-03-05T17:00:00Z"
    )
    assert (await api.post(f"{path}/accept", people.student))["state"] == "accepted"
    # The same limits as booking apply, not counting the booking itself.
    await api.post(f"{path}/reschedule", people.tutor, {"starts_at": "2030-03-05T17:30:00Z"})
    other = await api.book(MONDAY + timedelta(days=2))
    await api.error(
        "POST",
        f"/api/sessions/{other['id']}/reschedule",
        people.tutor,
        {"starts_at": "2030-03-05T08:00:00Z"},
        409,
        "daily_limit",
    )
    for body, status, code in [
        ({"starts_at": "2030-03-04T11:00:00Z"}, 422, "start_in_past"),
        ({"starts_at": "2030-03-06T17:00:00"}, 400, "invalid_payload"),
        ({"starts_at": "2030-03-06T17:00:00Z", "duration_minutes": 120}, 422, "duration_too_long"),
        ({}, 400, "invalid_payload"),
    ]:
        await api.error("POST", f"{path}/reschedule", people.tutor, body, status, code)
    for who in (people.student, people.parent):
        await api.error(
            "POST",
            f"{path}/reschedule",
            who,
            {"starts_at": "2030-03-06T17:00:00Z"},
            403,
            "forbidden",
        )
    await api.error(
        "POST",
        f"{path}/reschedule",
        people.tutor2,
        {"starts_at": "2030-03-06T17:00:00Z"},
        404,
        "not_found",
    )


async def test_cancel_on_time_and_late_at_the_24_hour_boundary(api: Api, people: People) -> None:
    on_time = await api.book(MONDAY)
    late = await api.book(MONDAY + timedelta(days=1))
    api.clock.set(MONDAY - timedelta(hours=24))  # exactly 24 hours before
    view = await api.post(
        f"/api/sessions/{on_time['id']}/cancel", people.tutor, {"reason": "  Feeling ill  "}
    )
    assert view["state"] == "cancelled"
    assert view["cancellation"] == {
        "by": {"id": "tutor-1", "name": "Tina Tutor"},
        "reason": "Feeling ill",
        "late": False,
    }
    api.clock.set(MONDAY + timedelta(days=1) - timedelta(hours=23, minutes=59))
    view = await api.post(f"/api/sessions/{late['id']}/cancel", people.student, None)
    assert view["cancellation"]["late"] is True
    assert view["cancellation"]["reason"] is None
    assert view["history"][-1]["detail"] == "late cancellation"
    again = await api.post(f"/api/sessions/{late['id']}/cancel", people.student, {})
    assert again["state"] == "cancelled"  # a retry changes nothing


async def test_who_may_cancel_and_when(api: Api, people: People) -> None:
    session = await api.book(MONDAY)
    path = f"/api/sessions/{session['id']}"
    await api.error("POST", f"{path}/cancel", people.parent, {}, 403, "forbidden")
    await api.error("POST", f"{path}/cancel", people.student2, {}, 404, "not_found")
    await api.error(
        "POST", f"{path}/cancel", people.tutor, {"reason": "x" * 5001}, 400, "invalid_payload"
    )
    await api.error("POST", f"{path}/cancel", people.tutor, {"reason": 5}, 400, "invalid_payload")
    view = await api.post(f"{path}/cancel", people.admin, {"reason": "support"})
    assert view["cancellation"]["by"]["id"] == "admin-1"
    for action, body in (("accept", None), ("reschedule", {"starts_at": "2030-03-06T17:00:00Z"})):
        await api.error(
            "POST",
            f"{path}/{action}",
            people.tutor if action != "accept" else people.student,
            body,
            409,
            "invalid_state",
        )


async def test_a_student_cancelling_a_group_booking_cancels_only_their_place(
    api: Api, people: People
) -> None:
    session = await api.book(MONDAY, students=[people.student, people.student2])
    path = f"/api/sessions/{session['id']}"
    await api.post(f"{path}/accept", people.student2)
    api.clock.set(MONDAY - timedelta(hours=2))
    view = await api.post(f"{path}/cancel", people.student, {"reason": "exam"})
    assert view["state"] == "accepted"  # the remaining student had accepted
    assert view["cancellation"] is None
    assert [(s["id"], s["acceptance"], s["removed"]) for s in view["students"]] == [
        ("student-1", "withdrawn", True),
        ("student-2", "accepted", False),
    ]
    assert view["history"][-1]["detail"] == "withdrew (late): exam"
