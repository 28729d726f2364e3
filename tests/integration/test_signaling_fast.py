"""The signaling fast path keeps the Socket.IO wire format: checked with the official clients
(python-socketio's AsyncClient and Node's socket.io-client, over a websocket from the start and
upgrading from polling) against a server built like the classroom's, with the fast path on and off
and with permessage-deflate negotiated (engine.io's queue and writer task stay for it)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from classroom.signaling import fast

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "web" / "node_modules" / "socket.io-client"


class Echo(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.gone: dict[str, str] = {}  # sid -> disconnect reason
        self.left = asyncio.Condition()

    async def on_disconnect(self, sid: str, reason: str) -> None:
        async with self.left:
            self.gone[sid] = reason
            self.left.notify_all()

    async def wait_gone(self, sid: str, timeout: float = 5) -> str:
        async with asyncio.timeout(timeout), self.left:
            await self.left.wait_for(lambda: sid in self.gone)
        return self.gone[sid]

    async def on_join(self, sid: str, room: str) -> dict[str, Any]:
        await self.enter_room(sid, room)
        return {"ok": True, "room": room}

    async def on_echo(self, sid: str, *args: Any) -> Any:
        return args[0] if len(args) == 1 else tuple(args)

    async def on_relay(self, sid: str, room: str, data: Any) -> dict[str, Any]:
        await self.emit("relayed", data, room=room, skip_sid=sid)
        return {"ok": True}

    async def on_ask(self, sid: str, data: Any) -> Any:
        # the server asks the client and waits for its ack (an emit with a callback)
        return {"answer": await self.call("question", data, to=sid, timeout=5)}

    async def on_burst(self, sid: str, count: int) -> int:
        # several frames to one client in one pass, then the ack
        for n in range(count):
            await self.emit("tick", n, to=sid)
        return count

    def on_double(self, sid: str, value: int) -> int:
        # a plain function as handler: python-socketio's own dispatch
        return value * 2

    async def on_bye(self, sid: str) -> None:
        await self.disconnect(sid)


class Root(socketio.AsyncNamespace):  # type: ignore[misc]
    async def on_echo(self, sid: str, *args: Any) -> Any:
        return args[0] if len(args) == 1 else tuple(args)


SIO = web.AppKey("sio", socketio.AsyncServer)
ECHO = web.AppKey("echo", Echo)


def build(
    signaling_fast: bool, deflate: bool = False, *, ping: tuple[float, float] = (25, 20)
) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        logger=False,
        ping_interval=ping[0],
        ping_timeout=ping[1],
        **fast.server_options(fast=signaling_fast),
    )
    fast.install(sio, fast=signaling_fast, deflate=deflate, activity=fast.Activity())
    echo = Echo("/echo")
    sio.register_namespace(echo)
    sio.register_namespace(Root("/"))
    app = web.Application()
    app[SIO] = sio
    app[ECHO] = echo
    sio.attach(app)
    return app


SERVERS = {"fast": (True, False), "plain": (False, False), "fast-deflate": (True, True)}


@pytest.fixture(params=["fast", "plain"])
async def url(request: pytest.FixtureRequest, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(build(*SERVERS[request.param]), host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


async def client(
    url: str, transports: list[str] | None = None, namespaces: list[str] | None = None
) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        namespaces=namespaces or ["/echo"],
        transports=transports or ["websocket"],
        wait_timeout=5,
    )
    return sio


PAYLOADS: list[Any] = [
    {"text": "héllo \u2603", "n": 3, "f": 1.5, "none": None, "list": [1, "2", {"x": True}]},
    {"blob": b"\x00\x01\xff", "nested": [{"deep": bytearray(b"ab")}], "text": "mixed"},
    b"\x89PNG raw bytes",
    "just a string",
    [1, 2, 3],
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["text", "binary-nested", "bytes", "str", "list"])
async def test_events_and_acks_round_trip(url: str, payload: Any) -> None:
    sio = await client(url)
    try:
        got = await sio.call("echo", payload, namespace="/echo", timeout=5)
        expected = payload
        if isinstance(payload, dict) and "nested" in payload:
            expected = {**payload, "nested": [{"deep": b"ab"}]}
        assert got == expected
        # several arguments come back as several arguments
        assert await sio.call("echo", ("a", b"b"), namespace="/echo", timeout=5) == ("a", b"b")
    finally:
        await sio.shutdown()


async def test_room_emit_text_and_binary(url: str) -> None:
    a, b, c = await client(url), await client(url), await client(url)
    got: dict[str, list[Any]] = {"b": [], "c": []}
    arrived = asyncio.Event()

    def recorder(name: str) -> Any:
        def record(data: Any) -> None:
            got[name].append(data)
            if len(got["b"]) == 2 and len(got["c"]) == 2:
                arrived.set()

        return record

    b.on("relayed", recorder("b"), namespace="/echo")
    c.on("relayed", recorder("c"), namespace="/echo")
    try:
        for sio in (a, b, c):
            assert (await sio.call("join", "r", namespace="/echo", timeout=5))["ok"]
        assert (await a.call("relay", ("r", {"t": "x"}), namespace="/echo", timeout=5))["ok"]
        assert (await a.call("relay", ("r", {"b": b"\x01"}), namespace="/echo", timeout=5))["ok"]
        async with asyncio.timeout(5):
            await arrived.wait()
        assert got["b"] == got["c"] == [{"t": "x"}, {"b": b"\x01"}]
    finally:
        for sio in (a, b, c):
            await sio.shutdown()


async def test_server_to_client_call_with_ack(url: str) -> None:
    sio = await client(url)
    sio.on("question", lambda data: {"echo": data}, namespace="/echo")
    try:
        assert await sio.call("ask", {"q": 1}, namespace="/echo", timeout=5) == {
            "answer": {"echo": {"q": 1}}
        }
        binary = await sio.call("ask", b"\x02", namespace="/echo", timeout=5)
        assert binary == {"answer": {"echo": b"\x02"}}
    finally:
        await sio.shutdown()


async def test_root_namespace_events_and_acks(url: str) -> None:
    sio = await client(url, namespaces=["/"])
    try:
        assert await sio.call("echo", {"a": 1}, timeout=5) == {"a": 1}
        assert await sio.call("echo", b"\x00\x01", timeout=5) == b"\x00\x01"
        assert await sio.call("echo", ("x", 2), timeout=5) == ("x", 2)
    finally:
        await sio.shutdown()


async def test_many_relays_in_flight_arrive_in_order(url: str) -> None:
    a, b = await client(url), await client(url)
    got: list[Any] = []
    done = asyncio.Event()
    count = 300

    def record(data: Any) -> None:
        got.append(data["n"])
        if len(got) == count:
            done.set()

    b.on("relayed", record, namespace="/echo")
    try:
        for sio in (a, b):
            assert (await sio.call("join", "r", namespace="/echo", timeout=5))["ok"]
        acks = await asyncio.gather(
            *(a.call("relay", ("r", {"n": n}), namespace="/echo", timeout=10) for n in range(count))
        )
        assert acks == [{"ok": True}] * count
        async with asyncio.timeout(10):
            await done.wait()
        assert got == list(range(count))
    finally:
        for sio in (a, b):
            await sio.shutdown()


async def test_plain_function_handlers_and_polling_upgrade(url: str) -> None:
    sio = await client(url, transports=["polling", "websocket"])
    ticks: list[int] = []
    all_ticks = asyncio.Event()

    def tick(n: int) -> None:
        ticks.append(n)
        if len(ticks) == 15:
            all_ticks.set()

    sio.on("tick", tick, namespace="/echo")
    try:
        assert await sio.call("double", 21, namespace="/echo", timeout=5) == 42
        for round_ in range(5):  # across the upgrade to a websocket
            assert await sio.call("burst", 3, namespace="/echo", timeout=5) == 3
            assert await sio.call("echo", {"round": round_}, namespace="/echo", timeout=5) == {
                "round": round_
            }
        async with asyncio.timeout(5):
            await all_ticks.wait()
        assert ticks == [0, 1, 2] * 5
        assert sio.transport() in ("polling", "websocket")
    finally:
        await sio.shutdown()


async def test_server_disconnect_reaches_the_client(url: str) -> None:
    sio = await client(url)
    gone = asyncio.Event()
    sio.on("disconnect", gone.set, namespace="/echo")
    try:
        await sio.emit("bye", namespace="/echo")
        async with asyncio.timeout(5):
            await gone.wait()
    finally:
        await sio.shutdown()


async def test_decorator_handlers_take_precedence_as_in_python_socketio(
    aiohttp_server: Any,
) -> None:
    results = {}
    for name, (signaling_fast, deflate) in SERVERS.items():
        app = build(signaling_fast, deflate)
        sio_server = app[SIO]

        @sio_server.on("echo", namespace="/echo")  # type: ignore[untyped-decorator]
        async def decorated(sid: str, data: Any) -> Any:
            return {"decorated": data}

        @sio_server.on("*", namespace="/")  # type: ignore[untyped-decorator]
        async def catch_all(event: str, sid: str, data: Any) -> Any:
            return {"caught": event}

        server: TestServer = await aiohttp_server(app, host="127.0.0.1")
        url = f"http://127.0.0.1:{server.port}"
        echo, root = await client(url), await client(url, namespaces=["/"])
        try:
            results[name] = (
                await echo.call("echo", 1, namespace="/echo", timeout=5),
                await echo.call("double", 2, namespace="/echo", timeout=5),
                await root.call("anything", 3, timeout=5),
            )
        finally:
            await echo.shutdown()
            await root.shutdown()
    assert results["fast"] == results["plain"] == results["fast-deflate"]
    assert results["plain"] == ({"decorated": 1}, 4, {"caught": "anything"})


@pytest.mark.parametrize("deflate", [False, True])
async def test_permessage_deflate_only_when_configured(aiohttp_server: Any, deflate: bool) -> None:
    server: TestServer = await aiohttp_server(build(True, deflate=deflate), host="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert ("permessage-deflate" in extensions) is deflate
        opening = await ws.receive_str(timeout=5)
        assert opening.startswith("0{")


@pytest.mark.parametrize("kind", list(SERVERS))
@pytest.mark.parametrize("transports", ["websocket", "polling,websocket"])
async def test_node_socket_io_client(
    kind: str, transports: str, aiohttp_server: Any, tmp_path: Path
) -> None:
    assert NODE_CLIENT.is_dir() and shutil.which("node"), (
        "node and the web client's npm packages are needed: run scripts/setup.sh"
    )
    server: TestServer = await aiohttp_server(build(*SERVERS[kind]), host="127.0.0.1")
    script = tmp_path / "client.js"
    script.write_text(NODE_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        f"http://127.0.0.1:{server.port}",
        transports,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"NODE_PATH": str(ROOT / "web" / "node_modules")},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result == {
        "text": {"text": "héllo ☃", "n": 3, "list": [1, "2", {"x": True}]},
        "binary": {"blob": [0, 1, 255], "text": "mixed"},
        "relayed": [{"t": "x"}, {"b": [1]}],
        "asked": {"answer": {"echo": {"q": 1}}},
        "burst": [0, 1, 2, 3, 4, "ack 5"],
        "fireAndForget": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        "root": {"r": 1},
        "transport": "websocket",
    }


NODE_SCRIPT = r"""
const { io } = require("socket.io-client");
const url = process.argv[2] + "/echo";
const transports = process.argv[3].split(",");
const opts = { transports, forceNew: true, reconnection: false };
setTimeout(() => { console.error("timeout"); process.exit(2); }, 10000).unref();
const bytes = (b) => Array.from(new Uint8Array(b));
(async () => {
  const a = io(url, opts), b = io(url, opts);
  await Promise.all([a, b].map((s) => new Promise((ok) => s.once("connect", ok))));
  const relayed = [];
  const got2 = new Promise((ok) =>
    b.on("relayed", (d) => {
      if (d.n === undefined) relayed.push(d);
      if (relayed.length === 2) ok();
    }));
  await a.emitWithAck("join", "r");
  await b.emitWithAck("join", "r");
  const text = await a.emitWithAck("echo", { text: "héllo ☃", n: 3, list: [1, "2", { x: true }] });
  const bin = await a.emitWithAck("echo", { blob: Buffer.from([0, 1, 255]), text: "mixed" });
  await a.emitWithAck("relay", "r", { t: "x" });
  await a.emitWithAck("relay", "r", { b: Buffer.from([1]) });
  await got2;
  a.on("question", (data, ack) => ack({ echo: data }));
  const asked = await a.emitWithAck("ask", { q: 1 });
  // frames to one client in one pass keep their order, the ack after them
  const burst = [];
  a.on("tick", (n) => burst.push(n));
  burst.push("ack " + (await a.emitWithAck("burst", 5)));
  // events without an ack id, relayed in order
  const ten = [];
  const got10 = new Promise((ok) =>
    b.on("relayed", (d) => {
      if (d.n !== undefined) ten.push(d.n);
      if (ten.length === 10) ok();
    }));
  for (let n = 0; n < 10; n++) a.emit("relay", "r", { n });
  await got10;
  const root = io(process.argv[2], opts);
  await new Promise((ok) => root.once("connect", ok));
  const rootEcho = await root.emitWithAck("echo", { r: 1 });
  const out = {
    text,
    binary: { blob: bytes(bin.blob), text: bin.text },
    relayed: relayed.map((r) => (r.b ? { b: bytes(r.b) } : r)),
    asked,
    burst,
    fireAndForget: ten,
    root: rootEcho,
    transport: a.io.engine.transport.name,
  };
  root.disconnect();
  console.log(JSON.stringify(out));
  a.disconnect(); b.disconnect();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""
