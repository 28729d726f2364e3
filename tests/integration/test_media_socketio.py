"""Media over real Socket.IO: socketio.AsyncClient + aiortc clients, a real aiohttp server.

The namespace here is the media mixin on a minimal stand-in for the classroom namespace (its
``join`` only records the room and opens the participant's media), so this runs the media
events, acks and server offers end to end without the sessions and presence machinery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from classroom.auth import Identity
from classroom.media.gateway import AiortcMediaGateway
from classroom.media.port import MediaGateway
from classroom.signaling.media_events import MediaSignaling
from tests.integration.test_media_gateway import media_settings, sees_everyone
from tests.integration.test_media_support import MediaClient, until

NAMESPACE = "/classroom"
SESSION = "session-sio-1"


class MiniClassroom(MediaSignaling, socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, media: MediaGateway) -> None:
        super().__init__(NAMESPACE)
        self.media = media
        self.rooms: dict[str, tuple[str, Identity]] = {}

    def current_room(self, sid: str) -> tuple[str, Identity] | None:
        return self.rooms.get(sid)

    async def on_join(self, sid: str, data: Any = None) -> dict[str, Any]:
        identity = Identity(data["user_id"], "student", data["user_id"].title())
        self.rooms[sid] = (SESSION, identity)

        async def send(event: str, payload: dict[str, Any]) -> None:
            await self.emit(event, payload, to=sid)

        assert self.media is not None
        await self.media.open_participant(SESSION, identity.user_id, identity.name, send)
        return {"ok": True}

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        _, identity = self.rooms.pop(sid)
        assert self.media is not None
        await self.media.close_participant(SESSION, identity.user_id)
        return {"ok": True}


class Participant:
    """A browser stand-in: a Socket.IO connection plus an aiortc peer connection."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.sio = socketio.AsyncClient(reconnection=False)
        self.media = MediaClient(user_id)
        self.refusals: list[dict[str, Any]] = []
        self.sio.on("media_offer", self._on_offer, namespace=NAMESPACE)
        self.media.answer_with(self._answer)

    async def _on_offer(self, payload: dict[str, Any]) -> None:
        await self.media.send("media_offer", payload)

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(event, data, namespace=NAMESPACE, timeout=10)
        return ack

    async def _answer(self, sdp: str) -> None:
        ack = await self.call("media_answer", {"sdp": sdp, "type": "answer"})
        if not ack["ok"]:
            self.refusals.append(ack)

    async def _offer(self, sdp: str) -> dict[str, Any]:
        ack = await self.call("media_offer", {"sdp": sdp, "type": "offer"})
        assert ack["ok"], ack
        return {"sdp": ack["answer"]["sdp"], "type": "answer", "tracks": ack["tracks"]}

    async def join(self, url: str) -> None:
        await self.sio.connect(url, namespaces=[NAMESPACE], transports=["websocket"])
        assert (await self.call("join", {"user_id": self.user_id}))["ok"]
        config = await self.call("media_config")
        assert config == {"ok": True, "ice_servers": []}
        await self.media.publish(self._offer)

    async def close(self) -> None:
        await self.media.close()
        await self.sio.shutdown()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, AiortcMediaGateway]]:
    gateway = AiortcMediaGateway(media_settings())
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    sio.register_namespace(MiniClassroom(gateway))
    app = web.Application()
    sio.attach(app)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield str(test_server.make_url("/")), gateway
    await gateway.close()
    await test_server.close()


async def test_three_participants_exchange_media_through_socketio(
    server: tuple[str, AiortcMediaGateway],
) -> None:
    url, gateway = server
    people = [Participant(name) for name in ("tutor", "student", "student2")]
    try:
        for person in people:
            await person.join(url)
        clients = [person.media for person in people]
        await until(lambda: sees_everyone(clients, video=20, audio=20), 30, "media via Socket.IO")
        assert all(person.refusals == [] for person in people)
        assert all(entry["status"] == "connected" for entry in gateway.stats(SESSION).values())

        # malformed payloads are refused cleanly, and the connection stays as it was
        student = people[1]
        for event, payload in [
            ("media_offer", {"sdp": 7}),
            ("media_answer", "nope"),
            ("media_candidate", {"candidate": {"candidate": 1}}),
        ]:
            ack = await student.call(event, payload)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
        ack = await student.call("media_answer", {"sdp": "v=0\r\n", "type": "answer"})
        assert ack["error"]["code"] == "no_pending_offer"
        assert gateway.stats(SESSION)["student"]["resets"] == 0

        # a leave renegotiates the others, who keep talking
        leaving = people.pop()
        assert (await leaving.call("leave"))["ok"]
        await leaving.close()
        await until(
            lambda: all("student2" not in p.media.mapping.values() for p in people),
            10,
            "student2's tracks withdrawn",
        )
        before = people[0].media.received("student", "video")
        await until(lambda: people[0].media.received("student", "video") > before + 10, 10, "on")
    finally:
        for person in people:
            await person.close()


async def test_media_events_need_a_classroom(server: tuple[str, AiortcMediaGateway]) -> None:
    url, _ = server
    person = Participant("stranger")
    await person.sio.connect(url, namespaces=[NAMESPACE], transports=["websocket"])
    try:
        ack = await person.call("media_offer", {"sdp": "v=0\r\n", "type": "offer"})
        assert ack["error"]["code"] == "not_in_classroom"
    finally:
        await person.close()
