"""No-shows against a real server with real Socket.IO clients, on SQLite and PostgreSQL: the
actions open at their times, the attendance record refuses them for someone who came, nobody is
billed unless a fee is configured, everyone is told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import LedgerEntry, utcnow
from classroom.sessions.api import SESSIONS
from tests.conftest import AppFactory, People
from tests.integration.absence_support import Http, bodies, mails, outbox
from tests.integration.sessions_support import Clock
from tests.support import Client, seed_session, wait_until

Connect = Callable[[Identity], Awaitable[Client]]
HOOKS = {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": "s3cret"}


class Lesson:
    """A real server, a session that started a minute ago, and the sessions clock to move."""

    def __init__(self, server: TestClient[Any, Any], people: People) -> None:
        self.server = server
        self.http = Http(server, people)
        self.people = people
        self.start = utcnow().replace(microsecond=0) - timedelta(minutes=1)
        self.clock = Clock(self.start)
        server.app[SESSIONS].clock = self.clock
        self.clients: list[Client] = []

    def at(self, minutes: float) -> datetime:
        return self.clock.set(self.start + timedelta(minutes=minutes))

    async def connect(self, who: Identity) -> Client:
        client = Client(who.user_id)
        self.clients.append(client)
        return await client.connect(str(self.server.make_url("/")), self.people.token(who))

    async def no_show_view(self, session_id: str, who: Identity) -> dict[str, Any]:
        view: dict[str, Any] = (await self.http.get(f"/api/sessions/{session_id}", who))["no_show"]
        return view


@pytest.fixture
async def lesson(make_client: AppFactory, people: People) -> AsyncIterator[Lesson]:
    lesson = Lesson(await make_client(**HOOKS), people)
    yield lesson
    await asyncio.gather(*(c.close() for c in lesson.clients), return_exceptions=True)


@pytest.fixture
async def fee_lesson(make_client: AppFactory, people: People) -> AsyncIterator[Lesson]:
    lesson = Lesson(
        await make_client(no_show_fee_percent=50, platform_fee_percent=10, **HOOKS), people
    )
    await lesson.http.call("PUT", "/api/tutors/me", people.tutor, {"hourly_rate_cents": 6000})
    yield lesson
    await asyncio.gather(*(c.close() for c in lesson.clients), return_exceptions=True)


async def test_prompt_at_five_end_at_ten_and_everyone_is_told(
    db: Database, people: People, lesson: Lesson, tmp_path: Path
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=lesson.start)
    await lesson.http.get("/api/sessions", people.parent)  # the parent is known (and linked)
    base = f"/api/sessions/{session_id}"
    lesson.at(2)
    tutor = await lesson.connect(people.tutor)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]

    view = await lesson.no_show_view(session_id, people.tutor)
    start = lesson.start
    assert view == {
        "prompt_available_at": (start + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "end_available_at": (start + timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
        "absent": ["student-1"],
        "prompted": [],
        "can_send_prompt": False,
        "can_end": False,
        "can_report_tutor_no_show": False,
        "fee_percent": 0,  # nobody is billed for a no-show by default
    }
    early = await lesson.http.post(f"{base}/no-show/prompt", people.tutor, {}, status=409)
    assert early["error"]["code"] == "too_early"
    assert early["error"]["available_at"] == view["prompt_available_at"]

    lesson.at(5)
    assert (await lesson.no_show_view(session_id, people.tutor))["can_send_prompt"] is True
    sent = await lesson.http.post(f"{base}/no-show/prompt", people.tutor)
    (prompt,) = sent["messages"]
    assert prompt["kind"] == "prompt" and prompt["session_id"] == session_id
    assert (
        prompt["text"] == "Hi Sara, are you joining? I'm waiting for you in the online classroom."
    )
    again = await lesson.http.post(f"{base}/no-show/prompt", people.tutor, {})
    assert again["messages"] == [prompt]  # one prompt per student and session
    mail_dir = tmp_path / "mail"
    await wait_until(lambda: any("are you joining?" in bodies(m)[0] for m in mails(mail_dir)))
    view = await lesson.no_show_view(session_id, people.tutor)
    assert view["prompted"] == ["student-1"] and view["can_end"] is False
    early = await lesson.http.post(f"{base}/no-show", people.tutor, {}, status=409)
    assert early["error"]["code"] == "too_early"

    lesson.at(10)
    assert (await lesson.no_show_view(session_id, people.tutor))["can_end"] is True
    ended = await lesson.http.post(f"{base}/no-show", people.tutor, {})
    assert (ended["state"], ended["state_reason"]) == ("missed", "student_no_show")
    assert ended["invoices"] == []
    assert ended["no_show"]["can_end"] is False
    assert "no-show: Sara Student did not join" in [h["detail"] for h in ended["history"]]
    closed = await tutor.wait_for("classroom_closed", lambda e: True)
    assert closed == {"session_id": session_id, "reason": "no_show"}
    # A repeat answers the same; the student can no longer join.
    assert (await lesson.http.post(f"{base}/no-show", people.tutor))["state"] == "missed"
    student = await lesson.connect(people.student)
    refused = await student.call("join", {"session_id": session_id})
    assert refused["error"]["code"] == "classroom_closed"

    # Nobody billed; everyone told, with the way back to the session; the webhook.
    async with db.reader() as tx:
        assert (await tx.execute(select(LedgerEntry))).scalars().all() == []
    told = {row.subject_id for row in await outbox(db, "session.no_show")}
    assert told == {"tutor-1", "student-1", "parent-1"}
    (hook,) = await outbox(db, "session.missed")
    assert hook.kind == "webhook"
    assert hook.payload["data"]["reason"] == "student_no_show"


async def test_attendance_refuses_a_no_show_for_someone_who_came(
    db: Database, people: People, lesson: Lesson
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=lesson.start)
    base = f"/api/sessions/{session_id}"
    lesson.at(1)
    tutor, student = await lesson.connect(people.tutor), await lesson.connect(people.student)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("leave_call", {}))["ok"]  # came, and left: the stay is evidence
    await tutor.wait_presence({"tutor-1": "present"})

    lesson.at(6)
    refused = await lesson.http.post(f"{base}/no-show/prompt", people.tutor, {}, status=409)
    assert refused["error"]["code"] == "was_present"
    lesson.at(11)
    view = await lesson.no_show_view(session_id, people.tutor)
    assert view["absent"] == [] and view["can_end"] is False
    refused = await lesson.http.post(f"{base}/no-show", people.tutor, {}, status=409)
    assert refused["error"]["code"] == "was_present"
    assert refused["error"]["user_ids"] == ["student-1"]
    body = {"student_ids": ["student-1"]}
    refused = await lesson.http.post(f"{base}/no-show", people.tutor, body, status=409)
    assert refused["error"]["code"] == "was_present"
    # The student's own report fails too: the tutor is right there.
    report = await lesson.http.post(f"{base}/tutor-no-show", people.student, {}, status=409)
    assert report["error"]["code"] == "was_present"
    assert (await lesson.http.get(base, people.tutor))["state"] == "in_progress"


async def test_the_tutor_must_have_waited_in_the_classroom(
    db: Database, people: People, lesson: Lesson
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=lesson.start)
    lesson.at(15)
    view = await lesson.no_show_view(session_id, people.tutor)
    assert view["absent"] == ["student-1"] and view["can_end"] is False
    assert view["can_send_prompt"] is True  # from the details page, without joining
    refused = await lesson.http.post(
        f"/api/sessions/{session_id}/no-show", people.tutor, {}, status=409
    )
    assert refused["error"]["code"] == "not_in_classroom"


async def test_a_fee_when_configured_in_one_transaction(
    db: Database, people: People, fee_lesson: Lesson, tmp_path: Path
) -> None:
    lesson = fee_lesson
    session_id = await seed_session(
        db, people.tutor, [people.student, people.student2], starts_at=lesson.start
    )
    lesson.at(1)
    tutor = await lesson.connect(people.tutor)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    lesson.at(10)
    before = await lesson.http.get(f"/api/sessions/{session_id}", people.tutor)
    assert before["no_show"]["fee_percent"] == 50  # the confirmation can say what it costs
    body = {"student_ids": ["student-2"]}  # Sara told the tutor she was ill: no fee for her
    ended = await lesson.http.post(f"/api/sessions/{session_id}/no-show", people.tutor, body)
    assert ended["state_reason"] == "student_no_show"
    (invoice,) = ended["invoices"]
    assert invoice["student"]["id"] == "student-2"
    assert (invoice["kind"], invoice["minutes"], invoice["rate_cents"]) == ("no_show_fee", 60, 6000)
    assert (invoice["amount_cents"], invoice["fee_cents"]) == (3000, 300)  # 50 % of 60 min
    async with db.reader() as tx:
        entries = (await tx.execute(select(LedgerEntry))).scalars().all()
    assert sorted((e.account, e.amount_cents) for e in entries) == [
        ("platform", 300),
        ("student:student-2", -3000),
        ("tutor:tutor-1", 2700),
    ]
    assert (await lesson.http.get("/api/me/balance", people.tutor))["balance_cents"] == 2700
    mine = await lesson.http.get("/api/invoices", people.student2)
    assert [i["kind"] for i in mine["invoices"]] == ["no_show_fee"]
    assert (await lesson.http.get("/api/invoices", people.student))["invoices"] == []
    mail_dir = tmp_path / "mail"
    await wait_until(
        lambda: any("No-show fee (Sid Student): 30.00 USD" in bodies(m)[0] for m in mails(mail_dir))
    )


async def test_a_student_who_waited_reports_the_tutor_never_came(
    db: Database, people: People, fee_lesson: Lesson
) -> None:
    lesson = fee_lesson
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=lesson.start)
    base = f"/api/sessions/{session_id}"
    lesson.at(1)
    student = await lesson.connect(people.student)
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    lesson.at(9)
    view = await lesson.no_show_view(session_id, people.student)
    assert view["can_report_tutor_no_show"] is False and view["absent"] == []
    early = await lesson.http.post(f"{base}/tutor-no-show", people.student, {}, status=409)
    assert early["error"]["code"] == "too_early"
    lesson.at(10)
    assert (await lesson.no_show_view(session_id, people.student))["can_report_tutor_no_show"]
    for who, status in ((people.tutor, 403), (people.parent, 403), (people.student2, 404)):
        await lesson.http.post(f"{base}/tutor-no-show", who, {}, status=status)
    reported = await lesson.http.post(f"{base}/tutor-no-show", people.student, {})
    assert (reported["state"], reported["state_reason"]) == ("missed", "tutor_no_show")
    assert reported["invoices"] == []  # never a fee when the tutor did not come
    closed = await student.wait_for("classroom_closed", lambda e: True)
    assert closed["reason"] == "no_show"
    assert (await lesson.http.post(f"{base}/tutor-no-show", people.student))["state"] == "missed"
    async with db.reader() as tx:
        assert (await tx.execute(select(LedgerEntry))).scalars().all() == []
    assert {r.subject_id for r in await outbox(db, "session.no_show")} >= {"tutor-1", "student-1"}


async def test_who_may_do_what(db: Database, people: People, lesson: Lesson) -> None:
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=lesson.start)
    in_person = await seed_session(
        db, people.tutor, [people.student2], starts_at=lesson.start, mode="in_person"
    )
    base = f"/api/sessions/{session_id}"
    lesson.at(12)
    http = lesson.http
    for path in (f"{base}/no-show", f"{base}/no-show/prompt"):
        assert await http.error("POST", path, people.student, {}, 403) == "forbidden"
        assert await http.error("POST", path, people.parent, {}, 403) == "forbidden"
        assert await http.error("POST", path, people.student2, {}, 404) == "not_found"
        assert await http.error("POST", path, people.tutor, {"student_ids": "x"}, 400) == (
            "invalid_payload"
        )
        assert await http.error("POST", path, people.tutor, {"extra": 1}, 400) == (
            "invalid_payload"
        )
    body = {"student_ids": ["student-9"]}
    assert await http.error("POST", f"{base}/no-show/prompt", people.tutor, body, 403) == (
        "not_a_participant"
    )
    path = f"/api/sessions/{in_person}/no-show"
    assert await http.error("POST", path, people.tutor, {}, 409) == "invalid_state"
    assert (await http.get(f"/api/sessions/{in_person}", people.tutor))["no_show"] is None
    parent_view = await lesson.no_show_view(session_id, people.parent)
    assert parent_view["absent"] == [] and not parent_view["can_end"]
