"""The signaling fast path (classroom/signaling/fast/) replaces or mirrors private python-engineio /
python-socketio code read in pinned versions. If an upgrade changes any of it, these fail loudly:
re-read the new code, port the change into the fast path, then update the pins and digests here."""

from __future__ import annotations

import gc
import hashlib
import inspect
from importlib.metadata import version

import pytest
import socketio
from aiohttp import web_ws
from aiohttp._websocket import reader, reader_c, reader_py  # type: ignore[attr-defined]
from engineio import async_server as eio_server
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import AsyncManager, AsyncRedisManager, packet
from socketio import async_server as sio_server
from socketio import base_server as sio_base

from classroom.signaling import fast
from classroom.signaling.fast import inbox

REPLACED = {
    # what the fast path re-implements, mirrors or relies on -> sha256 prefix of its source
    "engineio AsyncSocket._websocket_handler (websocket.socket_loop)": (
        AsyncSocket._websocket_handler,
        "27f120df4d717a24",
    ),
    "engineio AsyncSocket.poll (websocket._queued_writer)": (AsyncSocket.poll, "826f58a9f3606db2"),
    "engineio AsyncSocket.send (websocket.Direct.send, per socket)": (
        AsyncSocket.send,
        "0437276ccba7ab09",
    ),
    "engineio AsyncSocket.check_ping_timeout (Direct.send, Direct.send_message)": (
        AsyncSocket.check_ping_timeout,
        "77616d5ca7809257",
    ),
    "engineio AsyncSocket.receive (socket_loop's MESSAGE and PONG paths)": (
        AsyncSocket.receive,
        "a91ae36ec2fb5340",
    ),
    "engineio AsyncSocket.schedule_ping (Direct.pong)": (
        AsyncSocket.schedule_ping,
        "fe316639159cd70d",
    ),
    "engineio AsyncSocket._send_ping (Direct._ping)": (AsyncSocket._send_ping, "67db82a704ea49d0"),
    "engineio AsyncSocket.close (flags and the queue socket_loop relies on)": (
        AsyncSocket.close,
        "faa2e93902543244",
    ),
    "engineio AsyncSocket._upgrade_websocket (calls the driver with _websocket_handler)": (
        AsyncSocket._upgrade_websocket,
        "820b83efe96adb98",
    ),
    "engineio AsyncServer._handle_connect (OPEN queued before the websocket loop)": (
        eio_server.AsyncServer._handle_connect,
        "5bd7edc1d1ae115a",
    ),
    "engineio AsyncServer._trigger_event (socket_loop's MESSAGE path)": (
        eio_server.AsyncServer._trigger_event,
        "4a09b6e47eb66532",
    ),
    "engineio AsyncServer._service_task (monitor.service_task)": (
        eio_server.AsyncServer._service_task,
        "b6358bda51d0b34b",
    ),
    "engineio AsyncServer.shutdown (stops monitor.service_task)": (
        eio_server.AsyncServer.shutdown,
        "3f734c62c291d56a",
    ),
    "engineio AsyncServer.send (emit.send_encoded's fallback)": (
        eio_server.AsyncServer.send,
        "ff1fdb18f1c30bb3",
    ),
    "engineio AsyncServer.send_packet (emit.InlineEmit's fallback)": (
        eio_server.AsyncServer.send_packet,
        "c54317440865030d",
    ),
    "engineio Packet.decode (socket_loop's MESSAGE test)": (
        eio_packet.Packet.decode,
        "18e27ff7fd56addd",
    ),
    "engineio aiohttp WebSocket driver (websocket.WebSocketDriver)": (
        engineio_aiohttp.WebSocket,
        "96fbcb0d1f45694a",
    ),
    "socketio AsyncServer._handle_eio_message (dispatch.Dispatcher.event)": (
        sio_server.AsyncServer._handle_eio_message,
        "bef50fc0e1635921",
    ),
    "socketio AsyncServer._handle_event (dispatch._handle_event)": (
        sio_server.AsyncServer._handle_event,
        "65178105ef8b593d",
    ),
    "socketio AsyncServer._handle_event_internal (dispatch._run)": (
        sio_server.AsyncServer._handle_event_internal,
        "472e8b723a12d507",
    ),
    "socketio AsyncServer._trigger_event (dispatch.Dispatcher.event)": (
        sio_server.AsyncServer._trigger_event,
        "01ba90cfa09ba43e",
    ),
    "socketio BaseServer._get_event_handler (dispatch.Dispatcher.event)": (
        sio_base.BaseServer._get_event_handler,
        "e18d9a6570aaaaf4",
    ),
    "socketio BaseServer._get_namespace_handler (dispatch.Dispatcher.event)": (
        sio_base.BaseServer._get_namespace_handler,
        "3672467a1c13f704",
    ),
    "socketio AsyncNamespace.trigger_event (dispatch._run)": (
        socketio.AsyncNamespace.trigger_event,
        "95e90e5e1d98c31a",
    ),
    "socketio AsyncServer._send_packet (dispatch._send_packet)": (
        sio_server.AsyncServer._send_packet,
        "a00022b42c1c29e9",
    ),
    "socketio AsyncServer._send_eio_packet (emit.InlineEmit's fallback)": (
        sio_server.AsyncServer._send_eio_packet,
        "64cf72a2ab7d75b1",
    ),
    "socketio AsyncManager.emit (emit.InlineEmit.emit)": (AsyncManager.emit, "01ccd5b82b4f955e"),
    "socketio BaseManager.basic_enter_room (emit.InlineEmit.basic_enter_room)": (
        AsyncManager.basic_enter_room,
        "3f509586d2d7f47e",
    ),
    "socketio BaseManager.get_participants (emit.InlineEmit.get_participants)": (
        AsyncManager.get_participants,
        "7d78ad681c95de5b",
    ),
    "socketio BaseManager.basic_leave_room (deletes from a room of either kind)": (
        AsyncManager.basic_leave_room,
        "e27f3eea06d1c6a6",
    ),
    "socketio BaseManager.get_rooms (reads a room of either kind)": (
        AsyncManager.get_rooms,
        "56a1017f85af9f91",
    ),
    "socketio Packet.__init__ (packets.FastPacket)": (packet.Packet.__init__, "5fe2fa797e082c1d"),
    "socketio Packet.encode (packets.FastPacket.encode)": (
        packet.Packet.encode,
        "513c45be75181da2",
    ),
    "socketio Packet.decode (packets.split)": (packet.Packet.decode, "61ad7904b539f472"),
    "aiohttp WebSocketResponse._post_start (inbox.Response._post_start)": (
        web_ws.WebSocketResponse._post_start,
        "5537cb3f2ecae6ed",
    ),
    "aiohttp WebSocketResponse.receive (waits on the Inbox)": (
        web_ws.WebSocketResponse.receive,
        "7ba90b3668b041b1",
    ),
    "aiohttp WebSocketDataQueue.feed_data, Python twin of the compiled one (inbox.Inbox)": (
        reader_py.WebSocketDataQueue.feed_data,
        "2f38295087b8809f",
    ),
    "aiohttp WebSocketDataQueue.read, Python twin of the compiled one (inbox.Inbox)": (
        reader_py.WebSocketDataQueue.read,
        "65859996dced2f99",
    ),
}


def test_pinned_versions() -> None:
    assert version("python-engineio") == fast.PINNED_ENGINEIO, "engine.io changed: see fast/"
    assert version("python-socketio") == fast.PINNED_SOCKETIO, "socket.io changed: see fast/"
    assert version("aiohttp") == inbox.PINNED_AIOHTTP, "aiohttp changed: see fast/inbox.py"


def test_the_inbox_subclasses_aiohttps_compiled_queue() -> None:
    # the parser calls feed_data on the compiled class; the override must be reached from there
    assert reader.WebSocketDataQueue is reader_c.WebSocketDataQueue
    assert issubclass(inbox.Inbox, reader_c.WebSocketDataQueue)
    assert vars(web_ws)["WebSocketDataQueue"] is reader_c.WebSocketDataQueue
    assert vars(web_ws)["WebSocketReader"] is reader_c.WebSocketReader


@pytest.mark.parametrize("what", sorted(REPLACED))
def test_replaced_code_unchanged(what: str) -> None:
    obj, digest = REPLACED[what]
    source = inspect.getsource(obj)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"{what} changed upstream: port the change into classroom/signaling/fast/"
    )


def test_private_hooks_exist() -> None:
    # fast.install swaps the websocket driver in engine.io's private driver table
    sio = socketio.AsyncServer(async_mode="aiohttp", **fast.server_options(fast=True))
    assert callable(sio.eio._async["websocket"])
    message_handler = sio.eio.handlers["message"]
    fast.install(sio, fast=True, deflate=False)
    assert sio.eio._async["websocket"] is not engineio_aiohttp.WebSocket
    # the server methods the fast path replaces on the instance, and what it reads
    assert sio._send_packet.__func__ is not sio_server.AsyncServer._send_packet
    assert sio._handle_event.__func__ is not sio_server.AsyncServer._handle_event
    assert sio.eio._service_task.__func__ is not eio_server.AsyncServer._service_task
    assert sio.eio.handlers["message"] == message_handler == sio._handle_eio_message
    assert isinstance(sio._binary_packet, dict) and isinstance(sio.eio.sockets, dict)
    assert sio.reserved_events == ["connect", "disconnect"]
    assert isinstance(sio_server.task_reference_holder, set)
    assert sio.async_handlers is True and sio.eio.async_handlers is False
    # InlineEmit relies on these manager/server internals
    assert hasattr(AsyncManager, "_generate_ack_id")
    assert hasattr(socketio.AsyncServer, "_send_eio_packet")
    assert hasattr(socketio.AsyncServer, "_send_packet")


def test_plain_install_changes_only_the_driver() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    fast.install(sio, fast=False, deflate=False)
    assert "_send_packet" not in vars(sio) and "_handle_event" not in vars(sio)
    assert "_service_task" not in vars(sio.eio)


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
