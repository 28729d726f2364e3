"""The media Socket.IO handlers: payload checks and error acks (the gateway is a stand-in)."""

from __future__ import annotations

from typing import Any

import pytest

from classroom.auth import Identity
from classroom.media.port import MediaStatus, NegotiationGlare, SignalSender
from classroom.signaling.media_events import MediaSignaling

TUTOR = Identity("tutor-1", "tutor", "Tina Tutor")


class RecordingGateway:
    """Implements the MediaGateway port, records calls, raises what it is told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.raise_next: Exception | None = None

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.raise_next is not None:
            error, self.raise_next = self.raise_next, None
            raise error

    def ice_servers(self, user_id: str) -> list[dict[str, Any]]:
        return [{"urls": ["stun:stun.example.test"]}]

    async def open_participant(
        self, session_id: str, user_id: str, name: str, send: SignalSender
    ) -> None:
        self._record("open", session_id, user_id)

    async def handle_offer(
        self, session_id: str, user_id: str, sdp: str, type: str = "offer"
    ) -> dict[str, Any]:
        self._record("offer", session_id, user_id, sdp, type)
        return {"sdp": "v=0 answer", "type": "answer", "tracks": [{"mid": "2"}]}

    async def handle_answer(
        self, session_id: str, user_id: str, sdp: str, type: str = "answer"
    ) -> None:
        self._record("answer", session_id, user_id, sdp, type)

    async def handle_candidate(
        self, session_id: str, user_id: str, candidate: dict[str, Any] | None
    ) -> None:
        self._record("candidate", session_id, user_id, candidate)

    async def close_participant(self, session_id: str, user_id: str) -> None:
        self._record("close_participant", session_id, user_id)

    async def close_room(self, session_id: str) -> None:
        self._record("close_room", session_id)

    def stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        return {}

    def media_status(self, session_id: str, user_id: str) -> MediaStatus | None:
        return None

    async def close(self) -> None: ...


class Namespace(MediaSignaling):
    def __init__(self, media: RecordingGateway | None) -> None:
        self.media = media
        self.rooms: dict[str, tuple[str, Identity]] = {"joined": ("session-1", TUTOR)}

    def current_room(self, sid: str) -> tuple[str, Identity] | None:
        return self.rooms.get(sid)


@pytest.fixture
def gateway() -> RecordingGateway:
    return RecordingGateway()


@pytest.fixture
def namespace(gateway: RecordingGateway) -> Namespace:
    return Namespace(gateway)


async def test_offer_answer_candidate_and_config(
    namespace: Namespace, gateway: RecordingGateway
) -> None:
    ack = await namespace.on_media_offer("joined", {"sdp": "v=0 offer", "type": "offer"})
    assert ack == {
        "ok": True,
        "answer": {"sdp": "v=0 answer", "type": "answer"},
        "tracks": [{"mid": "2"}],
    }
    assert await namespace.on_media_answer("joined", {"sdp": "v=0 a", "type": "answer"}) == {
        "ok": True
    }
    candidate = {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0"}
    assert await namespace.on_media_candidate("joined", {"candidate": candidate}) == {"ok": True}
    assert await namespace.on_media_candidate("joined", {"candidate": None}) == {"ok": True}
    assert await namespace.on_media_config("joined") == {
        "ok": True,
        "ice_servers": [{"urls": ["stun:stun.example.test"]}],
    }
    assert gateway.calls[0] == ("offer", "session-1", "tutor-1", "v=0 offer", "offer")
    assert gateway.calls[2][3] == {
        "candidate": candidate["candidate"],
        "sdpMid": "0",
        "sdpMLineIndex": None,
        "usernameFragment": None,
    }
    assert gateway.calls[3] == ("candidate", "session-1", "tutor-1", None)


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("media_offer", None),
        ("media_offer", "v=0"),
        ("media_offer", {"sdp": ""}),
        ("media_offer", {"sdp": "v=0", "type": "answer"}),
        ("media_offer", {"sdp": 42}),
        ("media_offer", {"sdp": "v" * 100_001}),
        ("media_answer", {"sdp": "v=0", "type": "offer"}),
        ("media_answer", []),
        ("media_candidate", {"candidate": "candidate:1 1 udp"}),
        ("media_candidate", {"candidate": {"candidate": 5}}),
        ("media_candidate", {"candidate": {"candidate": "x", "sdpMLineIndex": -1}}),
        ("media_config", "nope"),
    ],
)
async def test_malformed_payloads_get_invalid_payload(
    namespace: Namespace, gateway: RecordingGateway, event: str, payload: Any
) -> None:
    ack = await getattr(namespace, f"on_{event}")("joined", payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid_payload"
    assert ack["error"]["message"]
    assert gateway.calls == []


async def test_outside_a_classroom_or_without_media(namespace: Namespace) -> None:
    ack = await namespace.on_media_offer("stranger", {"sdp": "v=0"})
    assert ack["error"]["code"] == "not_in_classroom"
    ack = await Namespace(None).on_media_offer("joined", {"sdp": "v=0"})
    assert ack["error"]["code"] == "media_unavailable"


async def test_gateway_refusals_become_error_acks(
    namespace: Namespace, gateway: RecordingGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.raise_next = NegotiationGlare(offer={"sdp": "v=0 server", "type": "offer"})
    ack = await namespace.on_media_offer("joined", {"sdp": "v=0"})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "glare"
    assert ack["error"]["offer"] == {"sdp": "v=0 server", "type": "offer"}

    gateway.raise_next = RuntimeError("boom")
    ack = await namespace.on_media_answer("joined", {"sdp": "v=0"})
    assert ack == {
        "ok": False,
        "error": {"code": "internal_error", "message": "Something went wrong on the server."},
    }
    assert "media_answer failed" in caplog.text
