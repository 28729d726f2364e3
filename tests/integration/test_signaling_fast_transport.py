"""engine.io over the fast path's websocket, frame by frame: order, one write per pass, pings,
silent clients and closes. A raw websocket client speaks engine.io / Socket.IO text here, so what
the server puts on the wire is what is checked; every case runs against the plain server too."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from tests.integration.test_signaling_fast import ECHO, SERVERS, SIO, build

PING = (0.2, 0.4)  # interval, timeout: engine.io closes after 0.6 s without a pong


class Raw:
    """One engine.io websocket connection, connected to the /echo namespace."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.eio_sid = self.sid = ""

    async def start(self) -> None:
        opening = await self.ws.receive_str(timeout=5)
        assert opening.startswith("0{")
        self.eio_sid = json.loads(opening[1:])["sid"]
        await self.ws.send_str("40/echo,")
        connected = await self.ws.receive_str(timeout=5)
        assert connected.startswith("40/echo,{")
        self.sid = json.loads(connected[len("40/echo,") :])["sid"]

    async def frame(self, timeout: float = 5) -> str:
        """The next text frame, engine.io pings included."""
        return await self.ws.receive_str(timeout=timeout)

    async def frames(self, count: int, timeout: float = 5) -> list[str]:
        """The next ``count`` text frames other than pings, which are answered."""
        got: list[str] = []
        async with asyncio.timeout(timeout):
            while len(got) < count:
                frame = await self.ws.receive_str()
                if frame == "2":
                    await self.ws.send_str("3")
                else:
                    got.append(frame)
        return got

    async def closed(self, timeout: float) -> list[str]:
        """Read until the server closes the websocket; the text frames seen on the way."""
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return seen
                assert msg.type is WSMsgType.TEXT
                seen.append(msg.data)


@pytest.fixture(params=["fast", "plain", "fast-deflate"])
async def server(request: pytest.FixtureRequest, aiohttp_server: Any) -> TestServer:
    app = build(*SERVERS[request.param], ping=PING)
    started: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(server: TestServer, http: aiohttp.ClientSession) -> Raw:
    """The client asks for permessage-deflate, as browsers do: only fast-deflate accepts it (and
    keeps engine.io's queue and writer task for it)."""
    url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    raw = Raw(await http.ws_connect(url, compress=15, autoping=False))
    await raw.start()
    return raw


async def test_a_burst_keeps_its_order_on_the_wire(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    raw = await connect(server, http)
    await raw.ws.send_str('42/echo,7["burst",4]')
    assert await raw.frames(5) == [
        '42/echo,["tick",0]',
        '42/echo,["tick",1]',
        '42/echo,["tick",2]',
        '42/echo,["tick",3]',
        "43/echo,7[4]",
    ]
    # an event without an ack id gets no ack; the next one with an id does
    await raw.ws.send_str('42/echo,["burst",1]')
    await raw.ws.send_str('42/echo,8["echo","done"]')
    assert await raw.frames(2) == ['42/echo,["tick",0]', '43/echo,8["done"]']


async def test_events_taken_early_and_queued_ones_keep_their_order(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    # events the fast path handles as aiohttp parses them (echo), events python-socketio
    # dispatches (double: a plain function) and a binary event with its attachment, back to back
    raw = await connect(server, http)
    await raw.ws.send_str('42/echo,1["double",1]')
    await raw.ws.send_str('42/echo,2["echo","a"]')
    await raw.ws.send_str('451-/echo,3["echo",{"_placeholder":true,"num":0}]')
    await raw.ws.send_bytes(b"\x00\xff")
    await raw.ws.send_str('42/echo,4["echo","b"]')
    await raw.ws.send_str('42/echo,5["double",2]')
    await raw.ws.send_str('42/echo,6["echo","c"]')
    got: list[str | bytes] = []
    async with asyncio.timeout(5):
        while len(got) < 7:
            msg = await raw.ws.receive()
            if msg.data != "2":
                got.append(msg.data)
    assert got == [
        "43/echo,1[2]",
        '43/echo,2["a"]',
        '461-/echo,3[{"_placeholder":true,"num":0}]',
        b"\x00\xff",
        '43/echo,4["b"]',
        "43/echo,5[4]",
        '43/echo,6["c"]',
    ]


async def test_pings_keep_coming_while_pongs_answer(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    raw = await connect(server, http)
    times: list[float] = []
    async with asyncio.timeout(5):
        while len(times) < 5:
            if await raw.frame() == "2":
                times.append(time.monotonic())
                await raw.ws.send_str("3")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the fast path sends the second ping after a random part of the interval (at least 10%)
    assert gaps[0] >= PING[0] * 0.1 * 0.75, gaps
    assert all(gap >= PING[0] * 0.75 for gap in gaps[1:]), gaps
    # still connected: a call is answered
    await raw.ws.send_str('42/echo,1["echo","alive"]')
    assert await raw.frames(1) == ['43/echo,1["alive"]']


async def test_a_held_up_server_loop_reads_what_waits_before_calling_a_client_silent(
    aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    # the client sends, then the server's loop is held up past the silence limit (a long GC
    # pause, a slow handler): what the client sent is read before the silence watchdog expires
    # it. The fast path only: here client and server share one loop, so the client cannot answer
    # the ping sent meanwhile either, and engine.io's pong check (plain, and the fast path with
    # deflate, which keeps engine.io's queue) rightly closes for that.
    server: TestServer = await aiohttp_server(build(True, False, ping=PING), host="127.0.0.1")
    raw = await connect(server, http)
    await raw.ws.send_str('42/echo,1["echo","held"]')
    time.sleep(sum(PING) * 2)  # the stall under test, not synchronisation: the loop is blocked
    assert await raw.frames(1) == ['43/echo,1["held"]']
    await raw.ws.send_str('42/echo,2["echo","alive"]')
    assert await raw.frames(1) == ['43/echo,2["alive"]']


async def test_connections_that_arrive_together_ping_at_different_moments(
    aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    ping = (0.5, 1.0)
    server: TestServer = await aiohttp_server(build(True, False, ping=ping), host="127.0.0.1")
    raws = await asyncio.gather(*(connect(server, http) for _ in range(20)))

    async def third_ping(raw: Raw) -> float:
        pings = 0
        while True:
            if await raw.frame() == "2":
                pings += 1
                if pings == 3:
                    return time.monotonic()
                await raw.ws.send_str("3")

    async with asyncio.timeout(10):
        times = await asyncio.gather(*(third_ping(raw) for raw in raws))
    # first pings come together (engine.io schedules them at connect); from the second on they
    # are spread over the interval: 20 connections land in a window well over a third of it
    assert max(times) - min(times) > ping[0] / 3, sorted(t - min(times) for t in times)


async def test_a_client_that_stops_answering_pings_is_closed(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    raw = await connect(server, http)
    started = time.monotonic()
    seen = await raw.closed(timeout=5)
    assert time.monotonic() - started >= PING[0]
    assert set(seen) <= {"2", "1"}
    assert await server.app[ECHO].wait_gone(raw.sid) in ("ping timeout", "transport close")


async def test_a_silent_client_is_cut_off_without_waiting_for_its_close_frame(
    server: TestServer, http: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    # a client that reads nothing and sends nothing (a laptop lid shut, a cable pulled): it never
    # answers the close handshake either, so the fast path drops the TCP connection once the
    # silence limit passed instead of leaving it to aiohttp's 10 s close timeout
    connections: Any = server.runner.server
    lost = asyncio.Event()
    connection_lost = connections.connection_lost

    def on_lost(handler: Any, exc: BaseException | None) -> None:
        connection_lost(handler, exc)
        lost.set()

    connections.connection_lost = on_lost
    raw = await connect(server, http)
    assert await server.app[ECHO].wait_gone(raw.sid) in ("ping timeout", "transport close")
    if request.node.callspec.params["server"] == "plain":
        return  # engine.io's own handler waits for the close frame
    async with asyncio.timeout(2):  # well under aiohttp's 10 s wait for the close frame
        await lost.wait()


# engine.io's writer task (plain, and fast-deflate, which keeps it) gives up after interval +
# timeout without a packet to send, and the reason is then "transport close"; its monitor checks
# a lone socket every `timeout` from the connect (the fast path's: every 0.25 s). With PING the two
# fall together, 0.8 s after the connect. Here the ping leaves at 0.6 s, the monitor finds its pong
# late at 1.2 s (the fast path's by 1.25 s), the writer would give up at 1.6 s.
TALKING_PING = (0.6, 0.4)


@pytest.mark.parametrize("name", SERVERS)
async def test_a_client_that_talks_but_never_answers_pings_is_closed(
    aiohttp_server: Any, http: aiohttp.ClientSession, name: str
) -> None:
    # never silent, and nothing is sent to it but pings: engine.io's client monitor (the fast
    # path's checks it in groups) finds the late pong and closes the socket
    app = build(*SERVERS[name], ping=TALKING_PING)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    raw = await connect(server, http)

    async def chatter() -> None:
        while True:  # load, not synchronisation: events without an ack id, no pongs
            await raw.ws.send_str('42/echo,["double",1]')
            await asyncio.sleep(TALKING_PING[0] / 4)

    talking = asyncio.create_task(chatter())
    try:
        assert await server.app[ECHO].wait_gone(raw.sid) == "ping timeout"
    finally:
        talking.cancel()
        await asyncio.gather(talking, return_exceptions=True)


@pytest.mark.parametrize("chatty", [False, True], ids=["silent", "chatty"])
async def test_engine_io_close_then_a_client_that_keeps_the_websocket_open(
    server: TestServer, http: aiohttp.ClientSession, chatty: bool
) -> None:
    raw = await connect(server, http)
    sio = server.app[SIO]

    async def chatter() -> None:
        while True:  # load, not synchronisation: a client that keeps talking after CLOSE
            await raw.ws.send_str("3")
            await asyncio.sleep(PING[0] / 4)

    talking = asyncio.create_task(chatter()) if chatty else None
    try:
        await sio.eio.disconnect(raw.eio_sid)
        # the CLOSE packet arrives and the client does not close: the server closes the
        # websocket (after about the silence limit; bounded here well above it)
        seen = await raw.closed(timeout=5)
    finally:
        if talking is not None:
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
    assert "1" in seen
    assert await server.app[ECHO].wait_gone(raw.sid) == "server disconnect"


async def test_client_close_packet_closes_the_socket(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    raw = await connect(server, http)
    assert raw.sid not in server.app[ECHO].gone
    await raw.ws.send_str("1")
    assert await server.app[ECHO].wait_gone(raw.sid) == "client disconnect"
    await raw.ws.close()


async def test_frames_for_one_client_in_one_pass_leave_in_one_write(
    aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    app = build(True, False)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    raw = await connect(server, http)
    direct = app[SIO].eio.sockets[raw.eio_sid].fast_direct
    writes: list[bytes] = []
    write = direct.transport.write

    def spy(data: bytes) -> None:
        writes.append(bytes(data))
        write(data)

    direct.transport.write = spy
    await raw.ws.send_str('42/echo,7["burst",3]')
    frames = await raw.frames(4)
    assert frames[-1] == "43/echo,7[3]"
    assert len(writes) == 1
    # the one write holds four complete websocket frames, as RFC 6455 lays them out
    payloads, data = [], writes[0]
    while data:
        assert data[0] == 0x81 and data[1] < 126
        payloads.append(data[2 : 2 + data[1]].decode())
        data = data[2 + data[1] :]
    assert payloads == frames


async def test_shutdown_stops_the_client_monitor(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    raw = await connect(server, http)
    sio = server.app[SIO]
    assert sio.eio.service_task_handle is not None
    async with asyncio.timeout(5):
        await sio.shutdown()
    assert sio.eio.service_task_handle is None
    await raw.ws.close()
