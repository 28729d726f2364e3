"""Forwarded tracks: start at a keyframe, continuous timestamps, bounded queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from classroom.media.forwarding import QUEUE_LIMIT, ForwardedTrack, Publication, is_keyframe

VP8_KEY = b"\x10\x02\x00\x9d\x01\x2a\xa0\x00\x78\x00"
VP8_DELTA = b"\x31\x02\x00\x00\x00\x00\x00\x00\x00\x00"


def test_keyframe_detection() -> None:
    assert is_keyframe("VP8", VP8_KEY)
    assert not is_keyframe("VP8", VP8_DELTA)
    assert not is_keyframe("VP8", b"\x10")
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88"
    assert is_keyframe("H264", idr)
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a\x00")
    assert not is_keyframe("H264", b"")
    assert is_keyframe("opus", b"\xfc")


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    connection = RTCPeerConnection()
    yield connection
    await connection.close()


def publication(pc: RTCPeerConnection, kind: str = "video", user: str = "tutor") -> Publication:
    transceiver = pc.addTransceiver(kind, direction="recvonly")
    return Publication(user_id=user, name=user, mid="0", transceiver=transceiver, on_end=print)


async def test_video_starts_at_a_keyframe_and_asks_for_one(pc: RTCPeerConnection) -> None:
    source = publication(pc)
    source.media_ssrc = 42
    track = ForwardedTrack("video")
    track.attach(source)
    track.push(VP8_KEY, 0, 90000, True)  # the sender has not started reading: ignored
    track._started = True
    track.push(VP8_DELTA, 3000, 90000, False)
    assert track.dropped == 1
    assert source.keyframe_requests == 1
    track.push(VP8_KEY, 6000, 90000, True)
    track.push(VP8_DELTA, 9000, 90000, False)
    first, second = await track.recv(), await track.recv()
    assert (bytes(first), first.pts, second.pts) == (VP8_KEY, 0, 3000)
    assert source.packets_forwarded == 2 and source.bytes_forwarded == 20


async def test_timestamps_run_on_when_the_source_changes(pc: RTCPeerConnection) -> None:
    one, two = publication(pc, "audio", "a"), publication(pc, "audio", "b")
    track = ForwardedTrack("audio")
    track._started = True
    track.attach(one)
    track.push(b"\xfc", 480_000, 48000, True)
    track.push(b"\xfc", 480_960, 48000, True)
    assert [(await track.recv()).pts for _ in range(2)] == [0, 960]
    track.attach(two)
    assert one.subscribers == set() and two.subscribers == {track}
    track.push(b"\xfc", 7, 48000, True)
    assert (await track.recv()).pts == 1920


async def test_queues_are_bounded(pc: RTCPeerConnection) -> None:
    audio = ForwardedTrack("audio")
    audio._started = True
    audio.attach(publication(pc, "audio"))
    for index in range(QUEUE_LIMIT["audio"] + 5):
        audio.push(bytes([index]), index * 960, 48000, True)
    assert len(audio._queue) == QUEUE_LIMIT["audio"] and audio.dropped == 5
    assert bytes(await audio.recv()) == bytes([5])  # the oldest went first

    video = ForwardedTrack("video")
    video._started = True
    video.attach(publication(pc))
    video.push(VP8_KEY, 0, 90000, True)
    for index in range(QUEUE_LIMIT["video"]):
        video.push(VP8_DELTA, (index + 1) * 3000, 90000, False)
    assert len(video._queue) == 0 and video._waiting_keyframe  # restart from a keyframe


async def test_stopped_track_detaches_and_ends(pc: RTCPeerConnection) -> None:
    from aiortc.mediastreams import MediaStreamError

    source = publication(pc)
    track = ForwardedTrack("video")
    track.attach(source)
    track.stop()
    assert source.subscribers == set()
    with pytest.raises(MediaStreamError):
        await track.recv()
