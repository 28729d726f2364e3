"""Two server processes' worth of applications in one event loop, on one Redis prefix and one
database: Socket.IO fan-out, the cluster's messages, the bounded manager pool, readiness.

(The same guarantees against real ``classroom serve`` processes: ``test_multinode.py``.)"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from classroom.app import MEDIA, NAMESPACE, NODE, ROOMS, SIO, create_app
from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.rooms.redis import RedisPresence
from tests.conftest import REDIS_URL, People, make_settings
from tests.redis_support import delete_prefix, unique_prefix
from tests.support import RECAP, Client, seed_session, statuses

pytestmark = pytest.mark.redis

Start = Callable[..., Awaitable[TestClient[Any, Any]]]


DECLARE_DEAD = """
local P, node = ARGV[1], ARGV[2]
local seen = redis.call('HGET', P .. 'seen', node)
redis.call('ZREM', P .. 'nodes', node)
redis.call('HDEL', P .. 'seen', node)
redis.call('HSET', P .. 'reaping', node, seen)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def start(database_url: str, db: Database, aiohttp_client: Any) -> AsyncIterator[Start]:
    """Start an application of the deployment (one Redis prefix) on its own port."""
    prefix = unique_prefix("fanout")
    servers: list[TestClient[Any, Any]] = []

    async def factory(**overrides: Any) -> TestClient[Any, Any]:
        port = free_port()
        values: dict[str, Any] = {
            "redis_url": REDIS_URL,
            "redis_prefix": prefix,
            "media_enabled": False,
            "public_url": f"http://127.0.0.1:{port}",
            "reconnect_grace": 2.0,
        }
        values.update(overrides)
        app = create_app(make_settings(database_url, **values))
        server: TestClient[Any, Any] = await aiohttp_client(
            TestServer(app, host="127.0.0.1", port=port)
        )
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close()
    await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
async def clients(people: People) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    made: list[Client] = []

    async def connect(server: TestClient[Any, Any], who: Identity) -> Client:
        client = Client(f"{who.user_id}@{server.port}")
        made.append(client)
        return await client.connect(str(server.make_url("/")), people.token(who))

    yield connect
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


async def test_presence_and_can_complete_reach_every_process(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    a, b = await start(), await start()
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await clients(a, people.tutor)
    details_page = await clients(b, people.tutor)  # the tutor's details page, on the other one
    student = await clients(b, people.student)

    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    both = {"tutor-1": "present", "student-1": "present"}
    await tutor.wait_presence(both)  # a change on b reaches a's sockets
    watch = await details_page.call("watch", {"session_id": session_id})
    assert watch["ok"] and watch["can_complete"] is False

    assert (await tutor.call("leave_call", {}))["can_complete"] is False
    assert (await student.call("leave_call", {}))["ok"]
    # The change happened on b; the page is on b too, but the push is computed where it lives.
    await details_page.wait_for("can_complete", lambda e: e["can_complete"] is True)
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    await details_page.wait_for(
        "can_complete",
        lambda e: e["can_complete"] is False and e is details_page.latest("can_complete"),
    )
    # A change made on a (the tutor rejoins and leaves) updates the page on b.
    page_on_a = await clients(a, people.tutor)
    assert (await page_on_a.call("watch", {"session_id": session_id}))["ok"]
    assert (await student.call("leave_call", {}))["ok"]
    for page in (details_page, page_on_a):
        await page.wait_for(
            "can_complete",
            lambda e, p=page: e["can_complete"] is True and e is p.latest("can_complete"),
        )


async def test_a_closed_classroom_takes_everyone_out_on_every_process(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    a, b = await start(), await start()
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor_a, tutor_b = await clients(a, people.tutor), await clients(b, people.tutor)
    assert (await tutor_a.call("join", {"session_id": session_id}))["ok"]
    assert (await tutor_b.call("join", {"session_id": session_id}))["ok"]  # a second tab
    assert b.app[NAMESPACE].live_classroom_count() == 1

    done = await tutor_a.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
    assert done["ok"], done
    closed = await tutor_b.wait_for("classroom_closed", lambda e: True)
    assert closed == {"session_id": session_id, "reason": "completed"}
    assert b.app[NAMESPACE].live_classroom_count() == 0
    refused = await tutor_b.call("join", {"session_id": session_id})
    assert refused["error"]["code"] == "classroom_closed"
    # Told once per socket: a's close went to a's sockets, b's to b's.
    assert tutor_b.events["classroom_closed"] == [closed]


async def test_a_burst_of_emits_waits_for_the_bounded_pool_and_loses_nothing(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    a, b = await start(redis_pool_size=3), await start(redis_pool_size=3)
    session_id = await seed_session(db, people.tutor, [people.student])
    student = await clients(b, people.student)
    received: list[int] = []
    everything = asyncio.Event()
    burst = 300

    async def probe(data: dict[str, int]) -> None:
        received.append(data["i"])
        if len(received) == burst:
            everything.set()

    student.sio.on("probe", probe, namespace="/classroom")
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    sio = a.app[SIO]
    await asyncio.gather(
        *(
            sio.emit("probe", {"i": i}, room=f"session:{session_id}", namespace="/classroom")
            for i in range(burst)
        )
    )
    async with asyncio.timeout(10):
        await everything.wait()
    assert sorted(received) == list(range(burst))


async def test_readiness_names_redis_and_the_fanout(start: Start) -> None:
    a = await start()
    async with asyncio.timeout(5):
        while True:
            response = await a.get("/readyz")
            body = await response.json()
            if response.status == 200:
                break
            await asyncio.sleep(0.05)
    assert body["checks"] == {"database": "ok", "redis": "ok", "fanout": "ok"}
    assert a.app[NODE].liveness.node_id == a.app[NAMESPACE].node_id


async def test_the_media_home_sends_joins_elsewhere_to_its_url(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    a, b = await start(media_enabled=True), await start(media_enabled=True)
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await clients(a, people.tutor)
    student = await clients(b, people.student)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    refused = await student.call("join", {"session_id": session_id})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "wrong_node"
    assert refused["error"]["url"] == f"http://127.0.0.1:{a.port}"
    assert statuses(tutor.latest("presence")) == {"tutor-1": "present"}
    student_on_home = await clients(a, people.student)
    assert (await student_on_home.call("join", {"session_id": session_id}))["ok"]


async def test_a_fenced_process_drops_its_sockets_and_continues_under_a_new_id(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    """A process that stalled past its heartbeat ttl is declared dead by the others; when it
    wakes up it may not add presence under its old id: its sockets are disconnected, it takes a
    new node id, and its clients join again."""
    a, b = await start(), await start()
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor = await clients(b, people.tutor)
    student = await clients(a, people.student)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})
    old_id = a.app[NAMESPACE].node_id

    # a stalls past its heartbeat ttl and the others declare it dead: what the liveness sweep's
    # script does to an expired node, done here at once (in one process a cannot really stall).
    store = b.app[ROOMS].presence
    assert isinstance(store, RedisPresence)
    await store.redis.eval(DECLARE_DEAD, 0, store.prefix, old_id)
    # The survivors' sweep drops a's connections; a's next heartbeat finds it fenced.
    await tutor.wait_presence({"tutor-1": "present", "student-1": "reconnecting"})
    async with asyncio.timeout(5):
        await student.sio.wait()  # a disconnected its sockets
    assert a.app[NODE].liveness.node_id == a.app[NAMESPACE].node_id != old_id
    again = await clients(a, people.student)
    assert (await again.call("join", {"session_id": session_id}))["ok"]
    await tutor.wait_presence({"tutor-1": "present", "student-1": "present"})


async def test_a_leave_recorded_by_another_process_closes_the_media_on_the_home(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    """A participant's media lives on the classroom's home; when another process records their
    leave (its grace timer or sweep got there first) the home still closes their media."""
    a, b = await start(media_enabled=True), await start(media_enabled=True)
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor, student = await clients(a, people.tutor), await clients(a, people.student)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    media = a.app[MEDIA]
    assert media.media_status(session_id, "student-1") is not None

    await b.app[ROOMS].remove(session_id, "student-1", "removed")
    await tutor.wait_presence({"tutor-1": "present"})
    async with asyncio.timeout(5):  # the cluster message follows the presence event
        while True:
            if media.media_status(session_id, "student-1") is None:
                break
            await asyncio.sleep(0.02)
    assert media.media_status(session_id, "tutor-1") is not None


class RedisProxy:
    """A TCP hop in front of the real Redis that can be cut, as when Redis goes down."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers |= {writer, upstream_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, writer)),
        ]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()


async def ready(server: TestClient[Any, Any], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if (await server.get("/readyz")).status == 200:
                return
            await asyncio.sleep(0.05)


async def test_redis_down_then_back(
    db: Database, people: People, start: Start, clients: Any
) -> None:
    """While Redis is down /readyz says so; when it is back the process listens to the others
    again on the same bounded pool."""
    proxy = RedisProxy()
    await proxy.start()
    try:
        a = await start(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        await ready(a)
        await proxy.cut()
        response = await a.get("/readyz")
        body = await response.json()
        assert response.status == 503
        assert body["error"]["code"] == "unavailable"
        assert body["checks"]["redis"] == "unreachable"
        assert body["checks"]["database"] == "ok"

        await proxy.start()
        await ready(a)
        b = await start()
        session_id = await seed_session(db, people.tutor, [people.student])
        page = await clients(a, people.tutor)
        assert (await page.call("watch", {"session_id": session_id}))["ok"]
        student = await clients(b, people.student)
        assert (await student.call("join", {"session_id": session_id}))["ok"]
        await page.wait_presence({"student-1": "present"})
    finally:
        await proxy.cut()
