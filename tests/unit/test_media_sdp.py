"""Checking client session descriptions and ICE candidates before aiortc sees them."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from classroom.media.sdp import SdpError, parse_candidate, parse_description


async def _offer() -> str:
    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    pc.addTrack(AudioStreamTrack())
    offer = await pc.createOffer()
    await pc.close()
    return str(offer.sdp)


async def test_a_real_offer_parses() -> None:
    description = parse_description(await _offer(), "offer")
    assert [m.kind for m in description.media] == ["video", "audio"]
    assert [m.direction for m in description.media] == ["sendrecv", "sendrecv"]
    assert all(m.primary_ssrc is not None for m in description.media)
    ufrag, fingerprints = description.identity
    assert ufrag and fingerprints and fingerprints[0].startswith("sha-")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1 to"),
        ("garbage", "v=0"),
        ("v=0\r\nthis is not sdp\r\n", "not an SDP line"),
        ("v=0\r\ns=-\r\n", "origin"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video x RTP 1\r\n", "could not be parsed"),
        (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
            "ICE",
        ),
        ("v=0\r\n" + "a=x\r\n" * 30_000, "1 to"),
    ],
)
def test_malformed_descriptions_are_refused(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_description(text, "offer")


async def test_a_section_without_fingerprint_is_refused() -> None:
    text = "\r\n".join(
        line for line in (await _offer()).split("\r\n") if not line.startswith("a=fingerprint")
    )
    with pytest.raises(SdpError, match="fingerprint"):
        parse_description(text, "offer")


def test_candidates() -> None:
    candidate = parse_candidate(
        {
            "candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx "
            "raddr 10.0.0.2 rport 46154 generation 0 ufrag abcd network-cost 999",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
    )
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.type) == ("203.0.113.7", 46154, "srflx")
    assert candidate.relatedAddress == "10.0.0.2" and candidate.sdpMid == "0"
    mdns = parse_candidate(
        {"candidate": "candidate:1 1 UDP 2122252543 4f5e-aa.local 50000 typ host", "sdpMid": "1"}
    )
    assert mdns is not None and mdns.ip == "4f5e-aa.local"
    assert parse_candidate({"candidate": "", "sdpMid": "0"}) is None


@pytest.mark.parametrize(
    "value",
    [
        {"candidate": "candidate:garbage", "sdpMid": "0"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 99999 typ host", "sdpMid": "0"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 5000 typ bogus", "sdpMid": "0"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 5000 typ host"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 5000 typ host raddr", "sdpMid": "0"},
    ],
)
def test_malformed_candidates_are_refused(value: dict[str, object]) -> None:
    with pytest.raises(SdpError):
        parse_candidate(value)
