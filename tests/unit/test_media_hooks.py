"""The private aiortc/aioice hooks the media forwarding relies on, exercised one by one.

If one of these fails after an upgrade, read classroom/media/forwarding.py before anything else:
forwarding encoded frames depends on exactly these behaviours.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpCodecParameters, RTCRtpTransceiver
from aiortc.codecs import CODECS
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpDecodingParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from classroom.media import forwarding
from classroom.media.forwarding import ForwardedTrack, Publication, check_hooks
from classroom.media.ice import LOOPBACK, allow_loopback_candidates

ROOT = Path(__file__).resolve().parents[2]
VP8 = next(c for c in CODECS["video"] if c.mimeType == "video/VP8")
H264 = next(c for c in CODECS["video"] if c.mimeType == "video/H264")
OPUS = next(c for c in CODECS["audio"] if c.mimeType == "audio/opus")
VP8_KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\xa0\x00\x78\x00" + bytes(40)
VP8_DELTA = b"\x31\x02\x00" + bytes(40)
SSRC = 1234


def test_all_hooks_are_present_on_the_installed_aiortc() -> None:
    check_hooks()


def test_the_pinned_aiortc_is_the_tested_one() -> None:
    pin = re.search(r'"aiortc>=([0-9.]+),<([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    lock = re.search(r"^aiortc==([0-9.]+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert pin and lock
    assert pin.group(1).startswith(forwarding.TESTED_AIORTC.rstrip("."))
    assert lock.group(1).startswith(forwarding.TESTED_AIORTC)
    assert aiortc.__version__.startswith(forwarding.TESTED_AIORTC)


def _publication(transceiver: RTCRtpTransceiver, ended: list[Publication]) -> Publication:
    return Publication(
        user_id="tutor", name="Tina", mid="0", transceiver=transceiver, on_end=ended.append
    )


def _vp8_packets(frame: bytes, sequence: int, timestamp: int) -> list[RtpPacket]:
    payloads = Vp8Encoder._packetize(frame, picture_id=1)
    return [
        RtpPacket(
            payload_type=VP8.payloadType,
            sequence_number=sequence + index,
            timestamp=timestamp,
            ssrc=SSRC,
            payload=payload,
            marker=int(index == len(payloads) - 1),
        )
        for index, payload in enumerate(payloads)
    ]


async def test_receiver_frames_reach_the_tap_and_never_the_decoder() -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    receiver = transceiver.receiver
    ended: list[Publication] = []
    publication = _publication(transceiver, ended)
    assert isinstance(getattr(receiver, forwarding.DECODER_QUEUE), forwarding.DecoderQueueTap)

    receiver._track = RemoteStreamTrack(kind="video")
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=SSRC, payloadType=97)]
        )
    )
    assert any(t.name == "video-decoder" for t in threading.enumerate())
    subscriber = ForwardedTrack("video")
    subscriber.attach(publication)
    subscriber._started = True  # as if its sender had started reading

    sequence = 100
    for number, frame in enumerate([VP8_KEYFRAME, VP8_DELTA, VP8_DELTA, VP8_KEYFRAME]):
        for packet in _vp8_packets(frame, sequence, 3000 * number):
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            sequence += 1

    # a frame leaves the jitter buffer when the next one starts: three complete frames
    assert publication.tap.frames == 3
    assert publication.packets_received == 3
    assert publication.keyframes == 1
    assert publication.tap.decoder_items == 0
    assert receiver.track._queue.qsize() == 0
    first = await subscriber.recv()
    assert bytes(first) == VP8_KEYFRAME and first.pts == 0

    await receiver.stop()  # puts None on the decoder queue: the idle thread exits
    assert ended == [publication]
    assert not any(t.name == "video-decoder" for t in threading.enumerate())
    await pc.close()


async def test_keyframe_request_sends_a_pli_for_the_publishers_ssrc() -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    publication = _publication(transceiver, [])
    publication.media_ssrc = SSRC
    sent: list[Any] = []

    async def record(packet: Any) -> None:
        sent.append(packet)

    transceiver.receiver._send_rtcp = record  # observe what _send_rtcp_pli builds
    publication.request_keyframe()
    publication.request_keyframe()  # throttled
    assert publication._request_task is not None
    await publication._request_task
    assert len(sent) == 1
    assert isinstance(sent[0], RtcpPsfbPacket)
    assert sent[0].fmt == RTCP_PSFB_PLI and sent[0].media_ssrc == SSRC
    assert publication.keyframe_requests == 1
    await pc.close()


@pytest.mark.parametrize("fmt", [RTCP_PSFB_PLI, RTCP_PSFB_FIR])
async def test_subscriber_keyframe_requests_reach_the_forwarded_track(fmt: int) -> None:
    pc = RTCPeerConnection()
    track = ForwardedTrack("video")
    transceiver = pc.addTransceiver(track, direction="sendonly")
    forwarding.hook_keyframe_requests(transceiver.sender, track)

    packet = RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=transceiver.sender._ssrc)
    await transceiver.sender._handle_rtcp_packet(packet)
    assert track.keyframe_requests_received == 1
    await pc.close()


@pytest.mark.parametrize(
    ("codec", "kind", "frame"),
    [
        (VP8, "video", VP8_KEYFRAME),
        (H264, "video", b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x65" + bytes(30)),
        (OPUS, "audio", b"\xfc" + bytes(60)),
    ],
)
async def test_sender_packs_forwarded_packets_without_encoding(
    codec: RTCRtpCodecParameters, kind: str, frame: bytes
) -> None:
    pc = RTCPeerConnection()
    track = ForwardedTrack(kind)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    source = _publication(pc.addTransceiver(kind, direction="recvonly"), [])
    track.attach(source)
    track._started = True
    track.push(frame, 48000, codec.clockRate, True)

    encoded = await transceiver.sender._next_encoded_frame(codec)
    assert encoded is not None and encoded.payloads
    assert encoded.timestamp == 0
    joined = b"".join(encoded.payloads)
    assert frame[-20:] in joined  # the bytes went through as they were, only packetized
    await pc.close()


async def test_loopback_host_candidates_can_be_gathered() -> None:
    assert "get_host_addresses" in aioice.ice.Connection.gather_candidates.__code__.co_names
    allow_loopback_candidates()
    allow_loopback_candidates()  # idempotent
    assert aioice.ice.get_host_addresses(True, False).count(LOOPBACK) == 1
    assert LOOPBACK not in aioice.ice.get_host_addresses(False, True)

    connection = aioice.ice.Connection(ice_controlling=True, use_ipv6=False)
    await connection.gather_candidates()
    assert LOOPBACK in [c.host for c in connection.local_candidates if c.type == "host"]
    await connection.close()
