"""The signaling fast path replaces private python-engineio / python-socketio code read in pinned
versions. If an upgrade changes any of it, these fail loudly: re-read the new code, port the
change into classroom/signaling/fast.py, then update the pins and digests here."""

from __future__ import annotations

import gc
import hashlib
import inspect
from importlib.metadata import version

import pytest
from engineio.async_drivers import aiohttp as engineio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import AsyncManager, AsyncRedisManager, packet

from classroom.signaling import fast

REPLACED = {
    # what fast.py re-implements or relies on -> sha256 prefix of its source in the pinned version
    "engineio AsyncSocket._websocket_handler (fast._socket_loop)": (
        AsyncSocket._websocket_handler,
        "27f120df4d717a24",
    ),
    "engineio AsyncSocket.poll (used by fast._socket_loop)": (AsyncSocket.poll, "826f58a9f3606db2"),
    "engineio aiohttp WebSocket driver (fast._WebSocket)": (
        engineio_aiohttp.WebSocket,
        "96fbcb0d1f45694a",
    ),
    "socketio AsyncManager.emit (fast.InlineEmit.emit)": (AsyncManager.emit, "01ccd5b82b4f955e"),
    "socketio Packet.__init__ (fast.FastPacket)": (packet.Packet.__init__, "5fe2fa797e082c1d"),
    "socketio Packet.encode (fast.FastPacket.encode)": (packet.Packet.encode, "513c45be75181da2"),
}


def test_pinned_versions() -> None:
    assert version("python-engineio") == fast.PINNED_ENGINEIO, "engine.io changed: see fast.py"
    assert version("python-socketio") == fast.PINNED_SOCKETIO, "socket.io changed: see fast.py"


@pytest.mark.parametrize("what", sorted(REPLACED))
def test_replaced_code_unchanged(what: str) -> None:
    obj, digest = REPLACED[what]
    source = inspect.getsource(obj)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"{what} changed upstream: port the change into classroom/signaling/fast.py"
    )


def test_private_hooks_exist() -> None:
    # fast.install swaps the websocket driver in engine.io's private driver table
    import socketio

    sio = socketio.AsyncServer(async_mode="aiohttp")
    assert callable(sio.eio._async["websocket"])
    fast.install(sio, fast=True, deflate=False)
    assert sio.eio._async["websocket"] is not engineio_aiohttp.WebSocket
    # InlineEmit relies on these manager/server internals
    assert hasattr(AsyncManager, "_generate_ack_id")
    assert hasattr(socketio.AsyncServer, "_send_eio_packet")
    assert hasattr(socketio.AsyncServer, "_send_packet")


def test_inline_emit_composes_with_the_redis_manager() -> None:
    manager_class = fast.inline_emit(AsyncRedisManager)
    mro = manager_class.__mro__
    assert mro.index(fast.InlineEmit) < mro.index(AsyncManager)
    assert mro.index(AsyncRedisManager) < mro.index(fast.InlineEmit)
    assert fast.inline_emit(manager_class) is manager_class
    with pytest.raises(TypeError):
        fast.server_options(fast=True, client_manager=AsyncManager())


def test_fast_json_falls_back_like_the_standard_module() -> None:
    assert fast.FastJson.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert fast.FastJson.dumps({1: 2}, separators=(",", ":")) == '{"1":2}'
    assert fast.FastJson.loads('{"a":NaN}')["a"] != 0
    with pytest.raises(TypeError):
        fast.FastJson.dumps({"when": object()})
    with pytest.raises(ValueError):
        fast.FastJson.loads("{not json")


def test_fast_packet_binary_only_when_json_fails() -> None:
    text = fast.FastPacket(packet.EVENT, data=["relay", {"a": 1}], namespace="/x", id=7)
    assert text.encode() == '2/x,7["relay",{"a":1}]'
    binary = fast.FastPacket(packet.EVENT, data=["blob", {"b": b"\x00\x01"}], namespace="/x")
    encoded = binary.encode()
    reference = packet.Packet(packet.EVENT, data=["blob", {"b": b"\x00\x01"}], namespace="/x")
    assert encoded == reference.encode()
    assert binary.packet_type == packet.BINARY_EVENT
    ack = fast.FastPacket(packet.ACK, data=[b"\xff"], namespace="/x", id=3)
    assert ack.encode() == packet.Packet(packet.ACK, data=[b"\xff"], namespace="/x", id=3).encode()
    empty = fast.FastPacket(packet.EVENT, namespace="/x")
    assert empty.encode() == packet.Packet(packet.EVENT, namespace="/x").encode()


async def test_gc_scheduler_freezes_and_restores() -> None:
    before = gc.get_threshold()
    scheduler = fast.GcScheduler(fast.Activity(), thresholds=(12345, 10, 10))
    scheduler.start()
    try:
        assert gc.get_threshold() == (12345, 10, 10)
        assert gc.get_freeze_count() > 0
    finally:
        await scheduler.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
