"""The classroom across real ``classroom serve`` processes sharing one PostgreSQL database and one
Redis prefix: completion gate, presence fan-out, the join/complete race, the hard cap and the
sweep once, and ``kill -9`` of a classroom's media home."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import Attendance, LedgerEntry, Session, SessionTransition, utcnow
from tests.cluster_support import Deployment, ServerProcess, fresh_database
from tests.conftest import REDIS_URL, People
from tests.support import RECAP, Client, seed_session

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

Connect = Callable[[ServerProcess, Identity], Awaitable[Client]]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def deployment(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Five processes of one deployment: a, b, c without media (a classroom's joins may land on
    any of them) and home, m2 with media (a classroom's joins go to its media home)."""
    cluster = Deployment(
        database_url,
        tmp_path_factory.mktemp("deployment"),
        {
            "CLASSROOM_MEDIA_ENABLED": "false",
            "CLASSROOM_CLASSROOM_HARD_CAP_MINUTES": "0",
            "CLASSROOM_SWEEP_INTERVAL_SECONDS": "1",
        },
    )
    try:
        for name in ("a", "b", "c"):
            cluster.start(name)
        for name in ("home", "m2"):
            cluster.start(name, CLASSROOM_MEDIA_ENABLED="true")
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
async def connect(people: People) -> AsyncIterator[Connect]:
    made: list[Client] = []

    async def factory(process: ServerProcess, who: Identity) -> Client:
        client = Client(f"{who.user_id}@{process.name}")
        made.append(client)
        return await client.connect(process.url, people.token(who))

    yield factory
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def read_redis_json(key: str) -> dict[str, Any]:
    client: Redis = Redis.from_url(REDIS_URL)
    try:
        raw = await client.get(key)
    finally:
        await client.aclose()
    assert raw is not None, key
    value: dict[str, Any] = json.loads(raw)
    return value


async def complete(
    http: aiohttp.ClientSession, process: ServerProcess, people: People, session_id: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{process.url}/api/sessions/{session_id}/complete",
        json={"minutes": 30, "recap": RECAP},
        headers=people.headers(people.tutor),
    ) as response:
        return response.status, await response.json()


async def test_a_student_on_one_process_blocks_completion_on_the_others(
    deployment: Deployment, db: Database, people: People, connect: Connect, http: Any
) -> None:
    a, b, c, *_ = deployment.processes
    session_id = await seed_session(db, people.tutor, [people.student])
    student = await connect(a, people.student)
    tutor = await connect(b, people.tutor)
    details_page = await connect(c, people.tutor)

    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await details_page.call("watch", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    both = {"tutor-1": "present", "student-1": "present"}
    for client in (student, tutor, details_page):  # snapshots reach every process's clients
        await client.wait_presence(both)

    refused = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert refused["error"]["code"] == "participants_remain", refused
    for process in (b, c):
        status, body = await complete(http, process, people, session_id)
        assert (status, body["error"]["code"]) == (409, "participants_remain")

    assert (await student.call("leave_call", {}))["ok"]
    await details_page.wait_for("can_complete", lambda e: e["can_complete"] is True)
    done = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert done["ok"] and done["session"]["state"] == "completed", done
    closed = await details_page.wait_for("classroom_closed", lambda e: True)
    assert closed == {"session_id": session_id, "reason": "completed"}

    for process, who in ((a, people.student), (b, people.student), (c, people.tutor)):
        late = await connect(process, who)
        refused = await late.call("join", {"session_id": session_id})
        assert refused["error"]["code"] == "classroom_closed", (process.name, refused)


async def test_leave_call_then_complete_over_http_on_a_third_process(
    deployment: Deployment, db: Database, people: People, connect: Connect, http: Any
) -> None:
    a, b, c, *_ = deployment.processes
    session_id = await seed_session(db, people.tutor, [people.student])
    student, tutor = await connect(a, people.student), await connect(b, people.tutor)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    assert (await tutor.call("leave_call", {})) == {"ok": True, "can_complete": False}
    status, body = await complete(http, c, people, session_id)
    assert (status, body["error"]["code"]) == (409, "participants_remain")
    assert (await student.call("leave_call", {}))["ok"]
    status, body = await complete(http, c, people, session_id)
    assert status == 200 and body["state"] == "completed", body
    refused = await student.call("join", {"session_id": session_id})
    assert refused["error"]["code"] == "classroom_closed"


async def test_join_racing_completion_across_processes_never_both(
    deployment: Deployment, db: Database, people: People, connect: Connect, http: Any
) -> None:
    a, b, c, *_ = deployment.processes
    student, tutor = await connect(a, people.student), await connect(b, people.tutor)
    outcomes: set[bool] = set()
    for round_ in range(16):
        session_id = await seed_session(db, people.tutor, [people.student])
        assert (await tutor.call("join", {"session_id": session_id}))["ok"]
        if round_ % 2:  # Log time & leave call on b
            join, finish = await asyncio.gather(
                student.call("join", {"session_id": session_id}),
                tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP}),
            )
            completed = bool(finish["ok"])
            code = None if completed else finish["error"]["code"]
        else:  # Complete Session over HTTP on c
            join, (status, body) = await asyncio.gather(
                student.call("join", {"session_id": session_id}),
                complete(http, c, people, session_id),
            )
            completed = status == 200
            code = None if completed else body["error"]["code"]
        joined = bool(join["ok"])
        assert joined != completed, (round_, join, code)
        if completed:
            assert join["error"]["code"] == "classroom_closed"
        else:
            assert code == "participants_remain"
            await student.call("leave_call", {})
            await tutor.call("leave_call", {})
        async with db.reader() as tx:
            row = await tx.get(Session, session_id)
            charges = await tx.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.session_id == session_id, LedgerEntry.kind == "charge")
            )
        assert row is not None and (row.state == "completed") == completed
        assert charges == (1 if completed else 0)
        outcomes.add(completed)


async def test_the_hard_cap_closes_once_across_processes(
    deployment: Deployment, db: Database, people: People, connect: Connect
) -> None:
    a, b, *_ = deployment.processes
    starts = utcnow() - timedelta(minutes=5) + timedelta(seconds=5)
    session_id = await seed_session(
        db, people.tutor, [people.student], starts_at=starts, duration_minutes=5
    )
    student, tutor = await connect(a, people.student), await connect(b, people.tutor)
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    for client in (student, tutor):  # both processes hold a cap timer; one closes
        closed = await client.wait_for("classroom_closed", lambda e: True, timeout=10)
        assert closed == {"session_id": session_id, "reason": "hard_cap"}
    async with asyncio.timeout(5):
        while True:
            async with db.reader() as tx:
                rows = (
                    await tx.execute(
                        select(Attendance.user_id, Attendance.leave_reason).where(
                            Attendance.session_id == session_id
                        )
                    )
                ).all()
            if all(reason is not None for _, reason in rows):
                break
            await asyncio.sleep(0.05)
    assert sorted(rows) == [("student-1", "closed"), ("tutor-1", "closed")]
    assert student.events["classroom_closed"] == [closed]


async def test_the_sweep_closes_an_unlogged_session_once(
    deployment: Deployment, db: Database, people: People
) -> None:
    starts = utcnow() - timedelta(hours=80)
    session_id = await seed_session(
        db, people.tutor, [people.student], starts_at=starts, state="in_progress"
    )
    async with asyncio.timeout(10):
        while True:
            async with db.reader() as tx:
                row = await tx.get(Session, session_id)
                assert row is not None
                if row.state != "in_progress":
                    break
            await asyncio.sleep(0.1)
    assert row.state == "missed"
    async with db.reader() as tx:
        moves = await tx.scalar(
            select(func.count())
            .select_from(SessionTransition)
            .where(SessionTransition.session_id == session_id)
        )
    assert moves == 1


async def test_killing_the_media_home(
    deployment: Deployment, db: Database, people: People, connect: Connect, http: Any
) -> None:
    """Last in this module: it kills one of the deployment's processes."""
    _, b, c, home, m2 = deployment.processes
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await connect(home, people.tutor)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    elsewhere = await connect(m2, people.student)
    refused = await elsewhere.call("join", {"session_id": session_id})
    assert refused["error"]["code"] == "wrong_node", refused
    assert refused["error"]["url"] == home.url
    details_page = await connect(b, people.tutor)
    assert (await details_page.call("watch", {"session_id": session_id}))["ok"]
    student = await connect(home, people.student)
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    await details_page.wait_presence({"tutor-1": "present", "student-1": "present"})

    home.kill()
    killed_at = time.monotonic()
    await details_page.wait_presence(
        {"tutor-1": "reconnecting", "student-1": "reconnecting"}, timeout=8
    )
    async with asyncio.timeout(15):  # read through another process's session details
        while True:
            async with http.get(
                f"{c.url}/api/sessions/{session_id}", headers=people.headers(people.tutor)
            ) as response:
                details = await response.json()
                assert response.status == 200, (response.status, details, deployment.logs())
            if details["presence"] == []:
                break
            await asyncio.sleep(0.2)
    gone_after = time.monotonic() - killed_at
    assert gone_after < 15, gone_after
    await details_page.wait_presence({})

    # A new join makes a surviving process the home: m2 takes it over, then m2's URL is the
    # one the others name.
    assert (await elsewhere.call("join", {"session_id": session_id}))["ok"], deployment.logs()
    home_record = await read_redis_json(f"{deployment.prefix}home:{session_id}")
    assert home_record["url"] == m2.url
    assert (await elsewhere.call("leave_call", {}))["ok"]
    status, body = await complete(http, c, people, session_id)
    assert status == 200 and body["state"] == "completed", (body, deployment.logs())
    async with db.reader() as tx:
        reasons = (
            await tx.execute(
                select(Attendance.user_id, Attendance.leave_reason)
                .where(Attendance.session_id == session_id)
                .order_by(Attendance.id)
            )
        ).all()
    assert reasons[:2] == [("tutor-1", "timeout"), ("student-1", "timeout")]
