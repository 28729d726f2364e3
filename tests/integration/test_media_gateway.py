"""The aiortc media gateway with real aiortc clients over loopback (no Socket.IO)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from classroom.config import Settings
from classroom.media.gateway import AiortcMediaGateway
from tests.integration.test_media_support import MediaClient, until

SESSION = "session-media-1"


def media_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": "x" * 32,
        "media_loopback": True,
        "reconnect_grace": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


class Classroom:
    """A gateway plus the clients that joined it, torn down in order."""

    def __init__(self, gateway: AiortcMediaGateway, session_id: str = SESSION) -> None:
        self.gateway = gateway
        self.session_id = session_id
        self.clients: dict[str, MediaClient] = {}

    async def join(self, user_id: str, **options: Any) -> MediaClient:
        client = MediaClient(user_id, **options)
        self.clients[user_id] = client
        await self.gateway.open_participant(self.session_id, user_id, user_id.title(), client.send)

        async def answer(sdp: str) -> None:
            await self.gateway.handle_answer(self.session_id, user_id, sdp)

        async def offer(sdp: str) -> dict[str, Any]:
            return await self.gateway.handle_offer(self.session_id, user_id, sdp)

        client.answer_with(answer)
        await client.publish(offer)
        return client

    async def leave(self, user_id: str) -> None:
        await self.gateway.close_participant(self.session_id, user_id)
        await self.clients.pop(user_id).close()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


@pytest.fixture
async def classroom() -> AsyncIterator[Classroom]:
    gateway = AiortcMediaGateway(media_settings())
    room = Classroom(gateway)
    yield room
    await room.close()
    await gateway.close()


def decoder_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder"))


def sees_everyone(clients: list[MediaClient], video: int = 10, audio: int = 10) -> bool:
    return all(
        viewer.received(other.user_id, "video") >= video
        and viewer.received(other.user_id, "audio") >= audio
        for viewer in clients
        for other in clients
        if other is not viewer
    )


async def test_three_participants_receive_each_other_without_server_decoding(
    classroom: Classroom,
) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    student2 = await classroom.join("student2")
    clients = [tutor, student, student2]

    await until(lambda: sees_everyone(clients, video=30, audio=30), 30, "media among three")

    # every published track went through the forwarding tap, and never to a decoder
    peers = classroom.gateway._rooms[SESSION].values()
    publications = [p for peer in peers for p in peer.publications.values()]
    assert sorted(p.kind for p in publications) == ["audio"] * 3 + ["video"] * 3
    for publication in publications:
        assert publication.tap.frames > 0
        assert publication.tap.decoder_items == 0
        assert publication.packets_forwarded > 0
        assert publication._receiver.track._queue.qsize() == 0  # no decoded frame, ever
    stats = classroom.gateway.stats(SESSION)
    assert set(stats) == {"tutor", "student", "student2"}
    for entry in stats.values():
        assert entry["status"] == "connected"
        assert entry["packets_forwarded"] > 0 and entry["bytes_forwarded"] > 0
        assert entry["publishing"] == ["audio", "video"]
        assert entry["receiving"] == 4
    assert all(not client.answer_errors for client in clients)


async def test_h264_is_forwarded_as_well(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor", video_codec="video/H264")
    student = await classroom.join("student", video_codec="video/H264")

    await until(lambda: sees_everyone([tutor, student]), 30, "H264 media")
    codecs = {
        p.codec.mimeType
        for peer in classroom.gateway._rooms[SESSION].values()
        for p in peer.publications.values()
        if p.kind == "video"
    }
    assert codecs == {"video/H264"}


async def test_late_joiner_gets_a_picture_at_once(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student], video=60), 30, "first two")
    # The tutor's encoder sends keyframes only when asked (aiortc: one every 3000 frames), so a
    # picture for the late joiner proves the keyframe request went through to the tutor.
    before = classroom.gateway.stats(SESSION)["tutor"]

    joined = time.monotonic()
    late = await classroom.join("late")
    # a decoded frame is a decodable picture: the client's VP8 decoder outputs nothing before
    # it has a keyframe
    await until(lambda: late.received("tutor", "video") >= 1, 5, "late joiner's first picture")
    assert late.first_frame_at[("tutor", "video")] - joined < 5
    after = classroom.gateway.stats(SESSION)["tutor"]
    assert after["keyframe_requests"] > before["keyframe_requests"]
    assert after["keyframes"] > before["keyframes"]


async def test_leave_and_rejoin_renegotiate_and_reuse_transceivers(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "both")
    transceivers = len(tutor.pc.getTransceivers())
    answered = tutor.offers_answered

    await classroom.leave("student")
    await until(lambda: tutor.offers_answered > answered, 10, "offer after the leave")
    assert tutor.mapping == {}
    assert classroom.gateway.stats(SESSION)["tutor"]["receiving"] == 0

    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "rejoined student")
    assert len(tutor.pc.getTransceivers()) == transceivers  # slots reused, SDP did not grow
    assert sorted(tutor.mapping.values()) == ["student", "student"]
    assert not tutor.answer_errors and not student.answer_errors


async def test_close_room_tears_everything_down() -> None:
    threads_before = decoder_threads()
    tasks_before = asyncio.all_tasks()
    gateway = AiortcMediaGateway(media_settings())
    room = Classroom(gateway)
    tutor = await room.join("tutor")
    student = await room.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "media before the close")
    assert gateway.connection_count() == 2

    peers = list(gateway._rooms[SESSION].values())
    await gateway.close_room(SESSION)
    await gateway.close_room(SESSION)  # idempotent
    assert gateway.connection_count() == 0
    assert gateway.stats(SESSION) == {}
    assert gateway.media_status(SESSION, "tutor") is None
    assert all(peer.pc.connectionState == "closed" for peer in peers)
    assert all(not peer.slots and not peer.publications for peer in peers)

    await room.close()
    await gateway.close()
    await gateway.close()  # idempotent
    await until(lambda: asyncio.all_tasks() <= tasks_before, 10, "no tasks left")
    await until(lambda: decoder_threads() <= threads_before, 10, "decoder threads gone")


async def test_malformed_offer_resets_only_that_participant(classroom: Classroom) -> None:
    from classroom.media.port import InvalidSdp

    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    student2 = await classroom.join("student2")
    await until(lambda: sees_everyone([tutor, student, student2]), 30, "three")
    gateway = classroom.gateway
    old_pc = gateway._rooms[SESSION]["student"].pc

    with pytest.raises(InvalidSdp) as refused:
        await gateway.handle_offer(SESSION, "student", "this is not SDP")
    assert refused.value.code == "invalid_sdp"
    assert "reset" in refused.value.message
    peer = gateway._rooms[SESSION]["student"]
    assert peer.pc is not old_pc and old_pc.connectionState == "closed"
    assert peer.resets == 1
    assert gateway.stats(SESSION)["student"]["publishing"] == []

    # the others keep talking to each other
    before = tutor.received("student2", "video")
    await until(lambda: tutor.received("student2", "video") > before + 10, 10, "others unaffected")

    # the student starts over with a new connection and everything flows again
    await classroom.clients.pop("student").close()
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student, student2]), 30, "student back")


async def test_malformed_candidate_resets_only_that_participant(classroom: Classroom) -> None:
    from classroom.media.port import InvalidCandidate

    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "both")
    gateway = classroom.gateway

    # a well-formed candidate is accepted (end of candidates too)
    await gateway.handle_candidate(
        SESSION,
        "tutor",
        {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0"},
    )
    await gateway.handle_candidate(SESSION, "tutor", None)

    with pytest.raises(InvalidCandidate):
        await gateway.handle_candidate(SESSION, "student", {"candidate": "candidate:garbage"})
    assert gateway.stats(SESSION)["student"]["resets"] == 1
    assert gateway.stats(SESSION)["tutor"]["resets"] == 0
    assert gateway.stats(SESSION)["tutor"]["status"] == "connected"


async def test_leaving_while_the_offer_is_answered_leaves_no_socket_open() -> None:
    """Closing while the server gathers its candidates must not leave aioice's sockets behind
    (they would be closed by the garbage collector later, with a ResourceWarning)."""
    gateway = AiortcMediaGateway(media_settings())
    client = MediaClient("student")
    try:
        for round_ in range(40):  # close after 0, 1, 2, ... steps of the answer: one is mid-gather
            session = f"{SESSION}-race-{round_}"
            await gateway.open_participant(session, "student", "Student", client.send)
            await client.pc.setLocalDescription(await client.pc.createOffer())
            offer = gateway.handle_offer(session, "student", client.pc.localDescription.sdp)
            answering = asyncio.ensure_future(offer)
            for _ in range(round_):
                await asyncio.sleep(0)  # let the answer run one more step before the leave
            await gateway.close_participant(session, "student")
            await asyncio.gather(answering, return_exceptions=True)
            assert gateway.connection_count() == 0
            await client.close()
            client = MediaClient("student")
        gc.collect()  # a leaked socket would warn here, and warnings are errors
    finally:
        await client.close()
        await gateway.close()


async def test_a_participant_gone_while_their_offer_is_out_is_taken_off_the_map(
    classroom: Classroom,
) -> None:
    """The student leaves while the tutor's offer carrying them waits for its answer: after the
    answer the server offers again, and the tutor's map no longer shows the student (a browser
    would otherwise keep their tile)."""
    tutor = await classroom.join("tutor")
    tutor.hold_offers = True
    await classroom.join("student")
    await until(lambda: bool(tutor.held), 10, "the offer carrying the student")
    await classroom.leave("student")
    answered = tutor.offers_answered
    tutor.release()
    await until(lambda: tutor.offers_answered > answered + 1, 10, "an offer after the answer")
    assert tutor.mapping == {}
    assert not tutor.answer_errors
