"""Server offers keep the browser's numbering (aiortc's createOffer alone would not).

The offer below is a real Chromium 156 offer (camera and microphone, trimmed codec list).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import CODECS

from classroom.media.forwarding import ForwardedTrack, prefer_codec
from classroom.media.offers import keep_negotiated

FINGERPRINT = (
    "C1:78:5D:0C:C6:F2:08:66:45:7B:50:BE:26:F7:8B:58:"
    "57:BA:E4:5B:BE:31:82:21:16:89:7D:6F:1E:24:93:E3"
)
CHROME_OFFER = """\
v=0
o=- 3343285404405340566 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS fd95f40c-c2cc-44f2-9eb4-0dcea39de0a2
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:LIRE
a=ice-pwd:j85AVpYma0/ZujXEm+ouYqIs
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:fd95f40c-c2cc-44f2-9eb4-0dcea39de0a2 61fdca02-9caf-44b5-95f9-cc40e7b9e4ee
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:2084427126 cname:ndnSmbV2BCw0ZvnU
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 107 108 109
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:LIRE
a=ice-pwd:j85AVpYma0/ZujXEm+ouYqIs
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:fd95f40c-c2cc-44f2-9eb4-0dcea39de0a2 8070d749-0dfc-413f-9b33-0c4cabbed6c4
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=104
a=rtpmap:108 H264/90000
a=rtcp-fb:108 goog-remb
a=rtcp-fb:108 transport-cc
a=rtcp-fb:108 ccm fir
a=rtcp-fb:108 nack
a=rtcp-fb:108 nack pli
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=ssrc-group:FID 1746327427 2599684423
a=ssrc:1746327427 cname:ndnSmbV2BCw0ZvnU
a=ssrc:2599684423 cname:ndnSmbV2BCw0ZvnU
""".replace("\n", "\r\n").replace("FINGERPRINT", FINGERPRINT)

VP8 = next(c for c in CODECS["video"] if c.mimeType == "video/VP8")
H264_42E01F = next(c for c in CODECS["video"] if c.parameters.get("profile-level-id") == "42e01f")
OPUS = next(c for c in CODECS["audio"] if c.mimeType == "audio/opus")


def numbering(sdp: str) -> tuple[dict[int, set[str]], dict[int, set[str]], dict[str, Any]]:
    """Payload type -> codecs and extension id -> URIs over all sections, and sections by mid."""
    pts: dict[int, set[str]] = {}
    ids: dict[int, set[str]] = {}
    sections = {}
    for media in aiortc_sdp.SessionDescription.parse(sdp).media:
        sections[media.rtp.muxId] = media
        for codec in media.rtp.codecs:
            name = f"{codec.mimeType.lower()};{sorted(codec.parameters.items())}"
            if codec.name.lower() == "rtx":
                name = f"rtx;{codec.parameters.get('apt')}"
            pts.setdefault(codec.payloadType, set()).add(name)
        for extension in media.rtp.headerExtensions:
            ids.setdefault(extension.id, set()).add(extension.uri)
    return pts, ids, sections


@pytest.fixture
async def server_pc() -> AsyncIterator[RTCPeerConnection]:
    pc = RTCPeerConnection()
    await pc.setRemoteDescription(RTCSessionDescription(CHROME_OFFER, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    for kind, codec in (("video", VP8), ("audio", OPUS), ("video", H264_42E01F)):
        transceiver = pc.addTransceiver(ForwardedTrack(kind), direction="sendonly")
        prefer_codec(transceiver, codec)
    yield pc
    await pc.close()


async def test_aiortc_alone_renumbers_what_the_browser_negotiated(
    server_pc: RTCPeerConnection,
) -> None:
    # If this starts failing, aiortc's createOffer keeps the numbering itself: offers.py may go.
    _, _, answered = numbering(server_pc.localDescription.sdp)
    _, _, raw = numbering((await server_pc.createOffer()).sdp)
    assert raw["1"].fmt != answered["1"].fmt  # VP8 was 96 for the browser, aiortc says 97
    assert raw["0"].rtp.headerExtensions != answered["0"].rtp.headerExtensions


async def test_server_offers_keep_the_browser_numbering(server_pc: RTCPeerConnection) -> None:
    answer = server_pc.localDescription.sdp
    _, _, answered = numbering(answer)
    offer = keep_negotiated(server_pc, (await server_pc.createOffer()).sdp)
    pts, ids, sections = numbering(offer)

    # no payload type or extension id means two things anywhere in the BUNDLE group
    assert all(len(names) == 1 for names in pts.values()), pts
    assert all(len(uris) == 1 for uris in ids.values()), ids
    # negotiated sections are unchanged
    for mid in ("0", "1"):
        assert sections[mid].fmt == answered[mid].fmt
        assert sections[mid].rtp.headerExtensions == answered[mid].rtp.headerExtensions
    # new sections use the browser's numbers for the same codec / extension
    vp8, opus, h264 = sections["2"], sections["3"], sections["4"]
    assert [(c.mimeType, c.payloadType) for c in vp8.rtp.codecs] == [
        ("video/VP8", 96),
        ("video/rtx", 97),
    ]
    assert vp8.rtp.codecs[1].parameters == {"apt": 96}
    assert [(c.mimeType, c.payloadType) for c in opus.rtp.codecs] == [("audio/opus", 111)]
    assert [c.payloadType for c in h264.rtp.codecs] == [108, 109]
    assert {e.uri: e.id for e in vp8.rtp.headerExtensions} == {
        "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
    }
    assert {e.uri: e.id for e in opus.rtp.headerExtensions} == {
        "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
    }

    # aiortc takes the rewritten offer, and its transceivers carry the same numbers
    await server_pc.setLocalDescription(RTCSessionDescription(offer, "offer"))
    slots = server_pc.getTransceivers()[2:]
    assert [t._codecs[0].payloadType for t in slots] == [96, 111, 108]
    assert [t.mid for t in slots] == ["2", "3", "4"]


async def test_first_offer_to_a_receive_only_client_uses_aiortc_numbering() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver(ForwardedTrack("video"), direction="sendonly")
    raw = (await pc.createOffer()).sdp
    assert keep_negotiated(pc, raw) == str(aiortc_sdp.SessionDescription.parse(raw))
    await pc.close()
