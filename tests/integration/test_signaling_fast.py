"""The signaling fast path keeps the Socket.IO wire format: checked with the official clients
(python-socketio's AsyncClient and, when the web client's packages are installed, Node's
socket.io-client) against a server built like the classroom's, with the fast path on and off."""

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


def build(signaling_fast: bool, deflate: bool = False) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp", logger=False, **fast.server_options(fast=signaling_fast)
    )
    fast.install(sio, fast=signaling_fast, deflate=deflate, activity=fast.Activity())
    sio.register_namespace(Echo("/echo"))
    app = web.Application()
    sio.attach(app)
    return app


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def url(request: pytest.FixtureRequest, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(build(request.param), host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


async def client(url: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, namespaces=["/echo"], transports=["websocket"], wait_timeout=5)
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


@pytest.mark.parametrize("deflate", [False, True])
async def test_permessage_deflate_only_when_configured(aiohttp_server: Any, deflate: bool) -> None:
    server: TestServer = await aiohttp_server(build(True, deflate=deflate), host="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert ("permessage-deflate" in extensions) is deflate
        opening = await ws.receive_str(timeout=5)
        assert opening.startswith("0{")


async def test_node_socket_io_client(url: str, tmp_path: Path) -> None:
    assert NODE_CLIENT.is_dir() and shutil.which("node"), (
        "node and the web client's npm packages are needed: run scripts/setup.sh"
    )
    script = tmp_path / "client.js"
    script.write_text(NODE_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        url,
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
    }


NODE_SCRIPT = r"""
const { io } = require("socket.io-client");
const url = process.argv[2] + "/echo";
const opts = { transports: ["websocket"], forceNew: true, reconnection: false };
setTimeout(() => { console.error("timeout"); process.exit(2); }, 10000).unref();
const bytes = (b) => Array.from(new Uint8Array(b));
(async () => {
  const a = io(url, opts), b = io(url, opts);
  await Promise.all([a, b].map((s) => new Promise((ok) => s.once("connect", ok))));
  const relayed = [];
  const got2 = new Promise((ok) =>
    b.on("relayed", (d) => { relayed.push(d); if (relayed.length === 2) ok(); }));
  await a.emitWithAck("join", "r");
  await b.emitWithAck("join", "r");
  const text = await a.emitWithAck("echo", { text: "héllo ☃", n: 3, list: [1, "2", { x: true }] });
  const bin = await a.emitWithAck("echo", { blob: Buffer.from([0, 1, 255]), text: "mixed" });
  await a.emitWithAck("relay", "r", { t: "x" });
  await a.emitWithAck("relay", "r", { b: Buffer.from([1]) });
  await got2;
  a.on("question", (data, ack) => ack({ echo: data }));
  const asked = await a.emitWithAck("ask", { q: 1 });
  const out = {
    text,
    binary: { blob: bytes(bin.blob), text: bin.text },
    relayed: relayed.map((r) => (r.b ? { b: bytes(r.b) } : r)),
    asked,
  };
  console.log(JSON.stringify(out));
  a.disconnect(); b.disconnect();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""
