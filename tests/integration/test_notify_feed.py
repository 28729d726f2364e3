"""The calendar feed route and the application wiring of the notifications."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from classroom.auth import Identity, TokenCodec
from classroom.db.engine import Database
from classroom.db.tables import ParentLink, SessionParticipant, User, utcnow
from classroom.db.tables import Session as SessionRow
from classroom.http import TOKENS, error_middleware
from classroom.notify.api import add_routes
from classroom.notify.ical import unfold
from classroom.notify.outbox import calendar_sequence
from classroom.notify.wiring import NOTIFIER, OUTBOX_WORKER, install_notifications
from tests.conftest import JWT_SECRET, People, make_settings
from tests.integration.test_notify_receivers import a_session, outbox_rows
from tests.support import wait_until


async def seed(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as tx:
        tx.add(User(id="tutor-1", role="tutor", name="Tina Tutor", email="tina@example.test"))
        tx.add(User(id="student-1", role="student", name="Sara Student", email=None))
        tx.add(ParentLink(parent_id="parent-1", student_id="student-1"))
        rows = [
            ("past", now - timedelta(days=60), "accepted", "student-1"),
            ("mine", now + timedelta(days=1), "accepted", "student-1"),
            ("gone", now + timedelta(days=2), "cancelled", "student-1"),
            ("other", now + timedelta(days=3), "requested", "student-2"),
        ]
        for session_id, starts_at, state, student in rows:
            tx.add(
                SessionRow(
                    id=session_id,
                    tutor_id="tutor-1",
                    starts_at=starts_at,
                    duration_minutes=30,
                    topic=f"Topic {session_id}",
                    notes="secret tutor notes",
                    state=state,
                )
            )
            await tx.flush()
            tx.add(SessionParticipant(session_id=session_id, student_id=student))
        await calendar_sequence(tx, "gone", bump=True)


def feed_app(db: Database) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[TOKENS] = TokenCodec(JWT_SECRET)
    add_routes(app, db)
    return app


def uids(text: str) -> list[str]:
    return [line.removeprefix("UID:") for line in unfold(text) if line.startswith("UID:")]


async def test_feed_shows_each_caller_their_own_sessions(
    db: Database, people: People, aiohttp_client: Any
) -> None:
    await seed(db)
    client: TestClient[Any, Any] = await aiohttp_client(feed_app(db))

    codec = TokenCodec(JWT_SECRET)

    async def feed(who: Identity) -> str:
        token = codec.encode_calendar(who, ttl_seconds=3600)
        response = await client.get("/api/calendar.ics", params={"token": token})
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        return await response.text()

    tutor = await feed(people.tutor)
    assert uids(tutor) == ["mine@classroom", "gone@classroom", "other@classroom"]
    assert "secret tutor notes" not in tutor
    lines = unfold(tutor)
    assert "STATUS:CANCELLED" in lines and "SEQUENCE:1" in lines
    assert uids(await feed(people.student)) == ["mine@classroom", "gone@classroom"]
    assert uids(await feed(people.parent)) == ["mine@classroom", "gone@classroom"]
    assert uids(await feed(people.student2)) == ["other@classroom"]
    assert uids(await feed(people.admin)) == []

    bearer = await client.get("/api/calendar.ics", headers=people.headers(people.student))
    assert bearer.status == 200


async def test_feed_refuses_a_missing_or_bad_token(db: Database, aiohttp_client: Any) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(feed_app(db))
    # An access token in a link would leak API access: the link takes calendar tokens only.
    access = TokenCodec(JWT_SECRET).encode("student-1", "student", "Sara")
    for params in ({}, {"token": "nonsense"}, {"token": access}):
        response = await client.get("/api/calendar.ics", params=params)
        assert response.status == 401
        body = await response.json()
        assert body["error"]["code"] == "unauthenticated"


async def test_wiring_starts_the_worker_wakes_it_on_commit_and_stops_it(
    db: Database, database_url: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    settings = make_settings(database_url, mail_dir=str(mail_dir), outbox_poll_seconds=60)
    app = web.Application()
    notifier = install_notifications(app, settings, db)
    assert app[NOTIFIER] is notifier
    worker = app[OUTBOX_WORKER]
    client: TestClient[Any, Any] = await aiohttp_client(app)
    assert worker.running

    async with db.transaction() as tx:
        await notifier.session_requested(tx, a_session(parents=()))
    # delivered long before the 60 s poll: the commit woke the worker
    await wait_until(lambda: len(list(mail_dir.glob("*.eml"))) == 3, timeout=10)

    async def all_sent() -> bool:
        return {r.status for r in await outbox_rows(db)} == {"sent"}

    await wait_until(all_sent)
    await client.close()
    assert not worker.running
    await worker.close()  # idempotent after the app stopped it


async def test_calendar_link_through_the_application(
    db: Database, people: People, client: TestClient[Any, Any]
) -> None:
    await seed(db)
    response = await client.get("/api/me/calendar", headers=people.headers(people.student))
    assert response.status == 200
    link = await response.json()
    assert "/api/calendar.ics?token=" in link["url"]
    feed = await client.get("/api/calendar.ics", params={"token": link["token"]})
    assert feed.status == 200
    assert uids(await feed.text()) == ["mine@classroom", "gone@classroom"]
    # The calendar token opens the feed and nothing else.
    api = await client.get("/api/sessions", headers={"Authorization": f"Bearer {link['token']}"})
    assert api.status == 401
    assert (await client.get("/api/me/calendar")).status == 401
