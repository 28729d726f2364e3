"""Booking over HTTP: the tutor profile, one-off and recurring sessions, the limits, visibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from classroom.auth import Identity
from tests.conftest import People
from tests.integration.sessions_support import Api, iso

MONDAY = datetime(2030, 3, 4, 17, 0, tzinfo=UTC)  # a Monday; the test clock starts at 12:00 UTC


@pytest.fixture
async def api(client: TestClient[Any, Any], people: People) -> Api:
    api = Api(client, people)
    await api.known(people.tutor, people.tutor2, people.student, people.student2, people.parent)
    return api


async def test_a_booking_as_each_person_sees_it(api: Api, people: People) -> None:
    session = await api.book(MONDAY, 60, topic="  Quadratic equations  ", notes="Bring graphs")
    assert session["state"] == "requested"
    assert session["tutor"] == {"id": "tutor-1", "name": "Tina Tutor"}
    assert session["students"] == [
        {
            "id": "student-1",
            "name": "Sara Student",
            "acceptance": "pending",
            "responded_at": None,
            "removed": False,
        }
    ]
    assert session["starts_at"] == "2030-03-04T17:00:00Z"
    assert session["ends_at"] == "2030-03-04T18:00:00Z"
    assert session["duration_minutes"] == 60
    assert session["topic"] == "Quadratic equations"
    assert session["notes"] == "Bring graphs"
    assert session["mode"] == "online"
    assert session["series_id"] is None
    assert session["classroom"] == {
        "opens_at": "2030-03-04T16:45:00Z",
        "closes_at": "2030-03-04T18:30:00Z",
        "open": False,
    }
    assert session["logging_deadline"] == "2030-03-07T18:00:00Z"
    assert session["presence"] == [] and session["presence_version"] == 0
    assert session["can_complete"] is False
    assert session["attendance"] == {
        "participants": [],
        "overlap_seconds": 0,
        "suggested_minutes": 5,
    }
    assert session["invoices"] == [] and session["reviews"] == []
    assert [(h["from"], h["to"], h["by"]["id"]) for h in session["history"]] == [
        (None, "requested", "tutor-1")
    ]
    path = f"/api/sessions/{session['id']}"
    for who in (people.student, people.parent):
        seen = await api.get(path, who)
        assert "notes" not in seen
        assert seen["topic"] == "Quadratic equations"
    assert (await api.get(path, people.admin))["notes"] == "Bring graphs"
    for stranger in (people.student2, people.tutor2):
        await api.error("GET", path, stranger, None, 404, "not_found")
    await api.error("GET", "/api/sessions/no-such-id", people.admin, None, 404, "not_found")
    await api.error("GET", "/api/sessions/" + "x" * 300, people.admin, None, 404, "not_found")


async def test_lists_show_what_each_person_may_see(api: Api, people: People) -> None:
    mine = await api.book(MONDAY)
    other = await api.book(MONDAY, students=[people.student2], tutor=people.tutor2)
    later = await api.book(MONDAY + timedelta(days=1))

    async def ids(who: Identity, query: str = "") -> list[str]:
        body = await api.get("/api/sessions" + query, who)
        return [s["id"] for s in body["sessions"]]

    assert await ids(people.tutor) == [mine["id"], later["id"]]
    assert await ids(people.tutor2) == [other["id"]]
    assert await ids(people.student) == [mine["id"], later["id"]]
    assert await ids(people.parent) == [mine["id"], later["id"]]
    assert await ids(people.student2) == [other["id"]]
    assert set(await ids(people.admin)) == {mine["id"], other["id"], later["id"]}
    window = f"?from={iso(MONDAY)}&to={iso(MONDAY + timedelta(hours=1))}"
    assert await ids(people.tutor, window) == [mine["id"]]
    assert await ids(people.tutor, "?state=cancelled") == []
    # An offset written with an unencoded "+" (a space once decoded) is understood.
    assert await ids(
        people.tutor, "?from=2030-03-04T18:00:00+01:00&to=2030-03-04T19:00:00%2B01:00"
    ) == [mine["id"]]
    listed = (await api.get("/api/sessions", people.student))["sessions"][0]
    assert "notes" not in listed and "history" not in listed
    for query, code in [
        ("?from=2030-03-04T17:00:00", "invalid_payload"),  # no offset
        ("?from=yesterday", "invalid_payload"),
        (f"?from={iso(MONDAY)}&to={iso(MONDAY - timedelta(hours=1))}", "invalid_payload"),
        ("?state=sleeping", "invalid_payload"),
        ("?limit=-1", "invalid_payload"),
    ]:
        await api.error(
            "GET", "/api/sessions" + query.replace("+", "%2B"), people.tutor, None, 400, code
        )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"starts_at": "2030-03-04T17:00:00"}, 400, "invalid_payload"),  # naive
        ({"starts_at": "2030-03-04"}, 400, "invalid_payload"),
        ({"starts_at": 1900000000}, 400, "invalid_payload"),
        ({"starts_at": "2030-03-04T17:00:30Z"}, 400, "invalid_payload"),
        ({"duration_minutes": 95}, 422, "duration_too_long"),
        ({"duration_minutes": 91}, 422, "duration_too_long"),
        ({"duration_minutes": 4}, 422, "invalid_duration"),
        ({"duration_minutes": 44}, 422, "invalid_duration"),
        ({"duration_minutes": "60"}, 400, "invalid_payload"),
        ({"student_ids": []}, 400, "invalid_payload"),
        ({"student_ids": ["student-1", "student-1"]}, 400, "invalid_payload"),
        ({"student_ids": ["x" * 65]}, 400, "invalid_payload"),
        ({"student_ids": ["tutor-1"]}, 422, "not_a_student"),
        ({"student_ids": ["tutor-2"]}, 422, "not_a_student"),
        ({"student_ids": ["parent-1"]}, 422, "not_a_student"),
        ({"topic": "t" * 501}, 400, "invalid_payload"),
        ({"notes": "n" * 5001}, 400, "invalid_payload"),
        ({"mode": "carrier pigeon"}, 400, "invalid_payload"),
        ({"colour": "blue"}, 400, "invalid_payload"),
        ({"recurrence": {"frequency": "daily", "count": 2}}, 400, "invalid_payload"),
        ({"recurrence": {"frequency": "weekly"}}, 400, "invalid_payload"),
        ({"recurrence": {"frequency": "weekly", "count": 53}}, 422, "too_many_occurrences"),
        (
            {"recurrence": {"frequency": "weekly", "until": "2031-06-01"}},
            422,
            "too_many_occurrences",
        ),
        ({"recurrence": {"frequency": "weekly", "until": "03/04/2030"}}, 400, "invalid_payload"),
        ({"starts_at": "2033-03-04T17:00:00Z"}, 400, "invalid_payload"),  # years ahead
    ],
)
async def test_bad_bookings_are_refused(
    api: Api, people: People, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"student_ids": ["student-1"], "starts_at": iso(MONDAY), "duration_minutes": 60}
    body.update(change)
    error = await api.error("POST", "/api/sessions", people.tutor, body, status, code)
    assert error["message"]
    assert (await api.get("/api/sessions", people.tutor))["sessions"] == []


async def test_only_tutors_book_and_bodies_must_be_json_objects(api: Api, people: People) -> None:
    body = {"student_ids": ["student-1"], "starts_at": iso(MONDAY), "duration_minutes": 60}
    for who in (people.student, people.parent, people.admin):
        await api.error("POST", "/api/sessions", who, body, 403, "forbidden")
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        response = await api.client.post(
            "/api/sessions", data=raw, headers=people.headers(people.tutor)
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_payload"


async def test_tutor_profile_and_availability(api: Api, people: People) -> None:
    profile = await api.get("/api/tutors/me", people.tutor)
    assert profile == {
        "tutor_id": "tutor-1",
        "name": "Tina Tutor",
        "hourly_rate_cents": None,
        "effective_rate_cents": 0,
        "timezone": "UTC",
        "availability": [],
        "rating": {"average": None, "count": 0},
    }
    body = {
        "hourly_rate_cents": 6000,
        "timezone": "America/New_York",
        "availability": [{"weekday": 0, "start": "12:00", "end": "14:00"}],
    }
    profile = await api.call("PUT", "/api/tutors/me", people.tutor, body)
    assert profile["hourly_rate_cents"] == 6000
    assert profile["availability"] == body["availability"]
    # 17:00 UTC is 12:00 in New York: inside; 19:30 UTC is 14:30: outside.
    await api.book(MONDAY)
    error = await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-2"],
            "starts_at": iso(MONDAY + timedelta(hours=2, minutes=30)),
            "duration_minutes": 30,
        },
        422,
        "outside_availability",
    )
    assert error["timezone"] == "America/New_York"
    # Partial update: only the rate changes; null goes back to the platform default.
    profile = await api.call("PUT", "/api/tutors/me", people.tutor, {"hourly_rate_cents": None})
    assert profile["hourly_rate_cents"] is None
    assert profile["timezone"] == "America/New_York"
    assert len(profile["availability"]) == 1
    public = await api.get("/api/tutors/tutor-1", people.student)
    assert public["timezone"] == "America/New_York"
    await api.error("GET", "/api/tutors/student-1", people.student2, None, 404, "not_found")
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"availability": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
        {"availability": [{"weekday": 1, "start": "10:00", "end": "09:00"}]},
        {"availability": [{"weekday": 1, "start": "9am", "end": "10:00"}]},
        {"hourly_rate_cents": -1},
        {"hourly_rate_cents": 12.5},
        {"rate": 5},
    ):
        await api.error("PUT", "/api/tutors/me", people.tutor, bad, 400, "invalid_payload")
    await api.error("PUT", "/api/tutors/me", people.student, {"timezone": "UTC"}, 403, "forbidden")
    await api.error("GET", "/api/tutors/me", people.parent, None, 403, "forbidden")


async def test_one_session_per_pair_per_day_in_the_tutors_timezone(
    api: Api, people: People
) -> None:
    await api.call("PUT", "/api/tutors/me", people.tutor, {"timezone": "America/New_York"})
    # Monday 23:00 in New York is Tuesday 04:00 UTC.
    late_monday = datetime(2030, 3, 5, 4, 0, tzinfo=UTC)
    await api.book(late_monday, 30)
    # Tuesday 09:00 in New York: same UTC day, another local day: allowed.
    await api.book(datetime(2030, 3, 5, 14, 0, tzinfo=UTC), 30)
    # Monday 10:00 in New York (15:00 UTC Monday): same local day as the first: refused.
    error = await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-1"],
            "starts_at": "2030-03-04T10:00:00-05:00",
            "duration_minutes": 30,
        },
        409,
        "daily_limit",
    )
    assert error["student_ids"] == ["student-1"]
    assert error["date"] == "2030-03-04"
    # Monday 00:00 local is still Monday: refused; Sunday 23:30 local: allowed.
    await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-1"],
            "starts_at": "2030-03-04T00:00:00-05:00",
            "duration_minutes": 30,
        },
        409,
        "daily_limit",
    )
    await api.book(datetime(2030, 3, 4, 4, 30, tzinfo=UTC), 30)  # Sunday 23:30 in New York
    # Another student the same day is fine; so is another tutor with the same student.
    await api.book(datetime(2030, 3, 4, 15, 0, tzinfo=UTC), 30, students=[people.student2])
    await api.book(datetime(2030, 3, 4, 15, 0, tzinfo=UTC), 30, tutor=people.tutor2)


async def test_a_cancelled_booking_frees_the_day_and_the_slot(api: Api, people: People) -> None:
    first = await api.book(MONDAY)
    await api.post(f"/api/sessions/{first['id']}/cancel", people.tutor, {})
    await api.book(MONDAY)


async def test_a_tutor_cannot_be_in_two_sessions_at_once(api: Api, people: People) -> None:
    first = await api.book(MONDAY, 60)
    error = await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-2"],
            "starts_at": iso(MONDAY + timedelta(minutes=59)),
            "duration_minutes": 30,
        },
        409,
        "overlap",
    )
    assert error["session_id"] == first["id"]
    await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-2"],
            "starts_at": iso(MONDAY - timedelta(minutes=30)),
            "duration_minutes": 35,
        },
        409,
        "overlap",
    )
    await api.book(MONDAY + timedelta(minutes=60), 30, students=[people.student2])  # back to back
    await api.book(
        MONDAY - timedelta(minutes=30), 30, students=[people.student2], tutor=people.tutor2
    )


async def test_a_recurring_series_is_individual_bookings(api: Api, people: People) -> None:
    created = await api.book(
        MONDAY, 45, topic="Algebra", recurrence={"frequency": "weekly", "count": 4}
    )
    sessions = created["sessions"]
    assert len(sessions) == 4
    assert {s["series_id"] for s in sessions} == {created["series_id"]}
    assert [s["starts_at"] for s in sessions] == [
        "2030-03-04T17:00:00Z",
        "2030-03-11T17:00:00Z",
        "2030-03-18T17:00:00Z",
        "2030-03-25T17:00:00Z",
    ]
    # One booking moves alone.
    second = sessions[1]["id"]
    moved = await api.post(
        f"/api/sessions/{second}/reschedule", people.tutor, {"starts_at": "2030-03-12T17:00:00Z"}
    )
    assert moved["starts_at"] == "2030-03-12T17:00:00Z"
    listed = (await api.get("/api/sessions", people.student))["sessions"]
    assert [s["starts_at"] for s in listed] == [
        "2030-03-04T17:00:00Z",
        "2030-03-12T17:00:00Z",
        "2030-03-18T17:00:00Z",
        "2030-03-25T17:00:00Z",
    ]
    biweekly = await api.book(
        MONDAY + timedelta(hours=3),
        30,
        students=[people.student2],
        recurrence={"frequency": "biweekly", "until": "2030-04-01"},
    )
    assert len(biweekly["sessions"]) == 3


async def test_a_series_with_one_bad_occurrence_books_nothing(api: Api, people: People) -> None:
    blocker = await api.book(MONDAY + timedelta(days=14), 30, students=[people.student2])
    error = await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-1"],
            "starts_at": iso(MONDAY),
            "duration_minutes": 60,
            "recurrence": {"frequency": "weekly", "count": 4},
        },
        409,
        "overlap",
    )
    assert error["occurrence"] == 2
    assert error["session_id"] == blocker["id"]
    assert (await api.get("/api/sessions", people.student))["sessions"] == []


async def test_recording_a_session_that_already_happened(api: Api, people: People) -> None:
    now = api.clock.now
    past = await api.book(now - timedelta(hours=3), 60, mode="in_person")
    assert past["state"] == "requested"
    assert past["classroom"] is None
    # Its window (72 hours after the end) has to be open still.
    await api.error(
        "POST",
        "/api/sessions",
        people.tutor,
        {
            "student_ids": ["student-2"],
            "starts_at": iso(now - timedelta(hours=73, minutes=1)),
            "duration_minutes": 60,
        },
        409,
        "grace_period_expired",
    )
    # Exactly at the end of its window is still on time.
    edge = await api.book(now - timedelta(hours=73), 60, students=[people.student2])
    assert edge["logging_deadline"] == iso(now)
