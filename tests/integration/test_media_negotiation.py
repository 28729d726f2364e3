"""Negotiation corner cases and media status, with real aiortc clients over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from classroom.media.gateway import AiortcMediaGateway
from classroom.media.port import MediaStatus, NegotiationGlare, NoPendingOffer, WrongConnection
from tests.integration.test_media_gateway import SESSION, Classroom, media_settings, sees_everyone
from tests.integration.test_media_support import MediaClient, SyntheticCamera, until

StatusCall = tuple[str, str, MediaStatus]


@pytest.fixture
async def statuses() -> list[StatusCall]:
    return []


@pytest.fixture
async def classroom(statuses: list[StatusCall]) -> AsyncIterator[Classroom]:
    async def record(session_id: str, user_id: str, status: MediaStatus) -> None:
        statuses.append((session_id, user_id, status))

    gateway = AiortcMediaGateway(media_settings(reconnect_grace=0.6), on_status_change=record)
    room = Classroom(gateway)
    yield room
    await gateway.close()
    await room.close()


async def test_glare_the_server_keeps_its_offer_and_says_so(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor")
    tutor.hold_offers = True
    student = await classroom.join("student")
    await until(lambda: len(tutor.held) == 1, 10, "server offer to the tutor")
    gateway = classroom.gateway

    # the tutor offers at the same moment (e.g. turning on a camera): the server is impolite
    crossing = await tutor.pc.createOffer()
    with pytest.raises(NegotiationGlare) as glare:
        await gateway.handle_offer(SESSION, "tutor", crossing.sdp)
    pending = glare.value.extra["offer"]
    assert pending["type"] == "offer" and pending["sdp"] == tutor.held[0]["sdp"]
    assert pending["tracks"] == tutor.held[0]["tracks"]

    # the polite client answers the server's offer, then offers again: all is well
    tutor.release()
    await until(lambda: tutor.offers_answered == 1, 10, "tutor answered")
    await tutor.publish(lambda sdp: gateway.handle_offer(SESSION, "tutor", sdp))
    await until(lambda: sees_everyone([tutor, student]), 30, "media after glare")
    assert not tutor.answer_errors


async def test_a_new_connection_is_answered_while_a_server_offer_is_pending(
    classroom: Classroom,
) -> None:
    tutor = await classroom.join("tutor")
    tutor.hold_offers = True
    student = await classroom.join("student")
    await until(lambda: len(tutor.held) == 1, 10, "server offer to the tutor")
    gateway = classroom.gateway
    old_pc = gateway._rooms[SESSION]["tutor"].pc
    assert old_pc.signalingState == "have-local-offer"  # the server offer is unanswered

    # the tutor's page reloads before answering (the server does not notice the old connection
    # go): the new RTCPeerConnection's offer is answered, not refused with the old one's offer
    classroom.clients["tutor-old-page"] = classroom.clients.pop("tutor")
    reloaded = await classroom.join("tutor")
    assert old_pc.connectionState == "closed"
    assert gateway.stats(SESSION)["tutor"]["resets"] == 1

    await until(lambda: sees_everyone([reloaded, student]), 30, "media both ways again")
    assert sorted(reloaded.mapping.values()) == ["student", "student"]
    assert not reloaded.answer_errors and not student.answer_errors
    assert gateway.media_status(SESSION, "tutor") == "connected"


async def test_answers_need_a_pending_offer_from_the_same_connection(
    classroom: Classroom,
) -> None:
    tutor = await classroom.join("tutor")
    gateway = classroom.gateway
    answer = tutor.pc.localDescription.sdp
    with pytest.raises(NoPendingOffer):
        await gateway.handle_answer(SESSION, "tutor", answer)

    tutor.hold_offers = True
    await classroom.join("student")
    await until(lambda: len(tutor.held) == 1, 10, "server offer")
    other_tab = await classroom.join("other-tab")  # any other RTCPeerConnection
    await other_tab.pc.setRemoteDescription(RTCSessionDescription(tutor.held[0]["sdp"], "offer"))
    await other_tab.pc.setLocalDescription(await other_tab.pc.createAnswer())
    with pytest.raises(WrongConnection):
        await gateway.handle_answer(SESSION, "tutor", other_tab.pc.localDescription.sdp)
    assert gateway.stats(SESSION)["tutor"]["resets"] == 0


async def test_stalled_media_is_reported_and_recovers(
    classroom: Classroom, statuses: list[StatusCall]
) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "media")
    gateway = classroom.gateway

    def reported(user_id: str) -> list[MediaStatus]:
        return [status for _, user, status in statuses if user == user_id]

    def settled(user_id: str, status: MediaStatus) -> bool:
        """``status`` is the participant's status now and the last one reported for them.

        Each participant is checked on their own: with a grace this short, a busy machine may
        hold everyone's media up for a moment (a status reported and taken back meanwhile)."""
        last = reported(user_id)[-1:]
        return gateway.media_status(SESSION, user_id) == status and last == [status]

    await until(lambda: settled("tutor", "connected"), 15, "tutor connected")
    senders = tutor.pc.getSenders()
    for sender in senders:  # the tutor's camera and microphone stop; the connection stays up
        sender.replaceTrack(None)

    await until(lambda: settled("tutor", "stalled"), 15, "tutor reported stalled")
    # the student now receives nothing, but their own media reaches the server: not stalled
    await until(
        lambda: settled("student", "connected") and settled("tutor", "stalled"),
        15,
        "the student connected while the tutor is stalled",
    )

    senders[0].replaceTrack(SyntheticCamera())  # the camera is back
    await until(lambda: settled("tutor", "connected"), 15, "tutor reported recovered")
    assert gateway.media_status(SESSION, "nobody") is None


async def test_a_lost_client_connection_is_reported_as_failed(
    classroom: Classroom, statuses: list[StatusCall]
) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "media")

    await student.pc.close()
    await until(lambda: classroom.gateway.media_status(SESSION, "student") == "failed", 10, "fail")
    assert (SESSION, "student", "failed") in statuses
    assert classroom.gateway.media_status(SESSION, "tutor") == "connected"

    # the student comes back with a new connection on the same participant
    classroom.clients.pop("student")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "media again")
    assert classroom.gateway.media_status(SESSION, "student") == "connected"


async def test_host_candidates_on_loopback_are_enough(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor", loopback_only=True)
    student = await classroom.join("student", loopback_only=True)
    assert "127.0.0.1" in tutor.last_answer_sdp
    await until(lambda: sees_everyone([tutor, student]), 30, "media over 127.0.0.1 only")


async def test_a_participant_without_camera_still_receives(classroom: Classroom) -> None:
    tutor = await classroom.join("tutor")
    viewer = await classroom.join("viewer", video=False, audio=False)
    await until(
        lambda: viewer.received("tutor", "video") >= 10 and viewer.received("tutor", "audio") >= 10,
        30,
        "media for a participant without camera",
    )
    assert classroom.gateway.stats(SESSION)["viewer"]["publishing"] == []
    assert tutor.mapping == {}


async def test_leaving_during_a_negotiation_leaves_nothing_behind(classroom: Classroom) -> None:
    from classroom.media.port import MediaNotOpen

    tutor = await classroom.join("tutor")
    gateway = classroom.gateway
    student = MediaClient("student")
    classroom.clients["student"] = student
    await gateway.open_participant(SESSION, "student", "Student", student.send)
    await student.pc.setLocalDescription(await student.pc.createOffer())
    peer = gateway._rooms[SESSION]["student"]

    # hold the server inside its negotiation, so the leave lands in the middle of it
    entered, proceed = asyncio.Event(), asyncio.Event()
    apply_offer = peer.pc.setRemoteDescription

    async def held(description: Any) -> None:
        entered.set()
        await proceed.wait()
        await apply_offer(description)

    peer.pc.setRemoteDescription = held  # type: ignore[method-assign]
    offering = asyncio.ensure_future(
        gateway.handle_offer(SESSION, "student", student.pc.localDescription.sdp)
    )
    async with asyncio.timeout(5):
        await entered.wait()
    await gateway.close_participant(SESSION, "student")
    proceed.set()
    outcome = (await asyncio.gather(offering, return_exceptions=True))[0]
    assert isinstance(outcome, MediaNotOpen)
    assert peer.closed and peer.pc.connectionState == "closed"  # no new connection made
    assert gateway.connection_count() == 1  # the tutor's
    assert tutor.answer_errors == []


async def test_a_track_that_ended_is_not_forwarded_again_and_nothing_resets(
    classroom: Classroom,
) -> None:
    tutor = await classroom.join("tutor")
    student = await classroom.join("student")
    await until(lambda: sees_everyone([tutor, student]), 30, "media")
    gateway = classroom.gateway

    video = next(t for t in tutor.pc.getTransceivers() if t.kind == "video" and t.sender.track)
    await video.sender.stop()  # RTCP BYE: the server's receiver for it ends
    await until(
        lambda: gateway.stats(SESSION)["tutor"]["publishing"] == ["audio"], 10, "video ended"
    )
    await tutor.publish(lambda sdp: gateway.handle_offer(SESSION, "tutor", sdp))
    stats = gateway.stats(SESSION)["tutor"]
    assert stats["publishing"] == ["audio"] and stats["resets"] == 0
    before = student.received("tutor", "audio")
    await until(lambda: student.received("tutor", "audio") > before + 10, 10, "audio goes on")
