"""Checking untrusted session descriptions and ICE candidates before aiortc sees them.

aiortc's own parser accepts any text (``"garbage"`` parses as an empty description) and relies on
``assert`` for some checks, so every client description goes through :func:`parse_description`
and every candidate through :func:`parse_candidate` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiortc import RTCIceCandidate
from aiortc import sdp as aiortc_sdp

MAX_SDP_LENGTH = 100_000
_LINE = re.compile(r"^[a-z]=.*$")
_CANDIDATE = re.compile(
    r"^(?:candidate:)?(?P<foundation>[A-Za-z0-9+/]{1,32}) (?P<component>[0-9]{1,3}) "
    r"(?P<protocol>udp|tcp|UDP|TCP) (?P<priority>[0-9]{1,10}) (?P<ip>[0-9A-Za-z.:%_-]{1,255}) "
    r"(?P<port>[0-9]{1,5}) typ (?P<type>host|srflx|prflx|relay)(?P<rest>( [^ ]+ [^ ]+)*)$"
)


class SdpError(ValueError):
    """A description or candidate is malformed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class MediaSection:
    mid: str | None
    kind: str
    direction: str | None
    primary_ssrc: int | None


@dataclass(frozen=True, slots=True)
class Description:
    type: str
    ice_ufrag: str | None
    fingerprints: tuple[str, ...]
    media: tuple[MediaSection, ...]

    @property
    def identity(self) -> tuple[str | None, tuple[str, ...]]:
        """What tells one client RTCPeerConnection from another: ICE ufrag and DTLS
        fingerprints (a new browser connection always has a new certificate)."""
        return self.ice_ufrag, self.fingerprints


def parse_description(text: str, expected_type: str) -> Description:
    if not text or len(text) > MAX_SDP_LENGTH:
        raise SdpError(f"the SDP must be 1 to {MAX_SDP_LENGTH} characters")
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    if lines[0].strip() != "v=0":
        raise SdpError("the SDP must start with 'v=0'")
    bad = next((line for line in lines if not _LINE.match(line.rstrip("\r"))), None)
    if bad is not None:
        raise SdpError(f"not an SDP line: {bad[:60]!r}")
    if not any(line.startswith("o=") for line in lines):
        raise SdpError("the SDP has no origin ('o=') line")
    try:
        parsed = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser raises assorted errors on bad input
        raise SdpError(f"the SDP could not be parsed ({type(exc).__name__})") from None
    sections: list[MediaSection] = []
    ufrag: str | None = None
    fingerprints: set[str] = set()
    for media in parsed.media:
        ice_ufrag = media.ice.usernameFragment if media.ice is not None else None
        ice_pwd = media.ice.password if media.ice is not None else None
        prints = media.dtls.fingerprints if media.dtls is not None else []
        if media.kind in ("audio", "video") and (not ice_ufrag or not ice_pwd):
            raise SdpError(f"the {media.kind} section has no ICE ufrag/pwd")
        if media.kind in ("audio", "video") and not prints:
            raise SdpError(f"the {media.kind} section has no DTLS fingerprint")
        ufrag = ufrag or ice_ufrag
        fingerprints.update(f"{f.algorithm} {f.value}".lower() for f in prints)
        sections.append(
            MediaSection(
                mid=media.rtp.muxId,
                kind=media.kind,
                direction=media.direction,
                primary_ssrc=_primary_ssrc(media),
            )
        )
    return Description(
        type=expected_type,
        ice_ufrag=ufrag,
        fingerprints=tuple(sorted(fingerprints)),
        media=tuple(sections),
    )


def _primary_ssrc(media: Any) -> int | None:
    for group in media.ssrc_group:
        if group.semantic == "FID" and group.items:
            return int(group.items[0])
    if media.ssrc:
        return int(media.ssrc[0].ssrc)
    return None


def parse_candidate(value: dict[str, Any]) -> RTCIceCandidate | None:
    """A browser ``RTCIceCandidateInit`` as an aiortc candidate; ``None`` at end of candidates."""
    line = str(value.get("candidate") or "").strip()
    if not line:
        return None
    match = _CANDIDATE.match(line)
    if match is None:
        raise SdpError(f"not an ICE candidate line: {line[:80]!r}")
    if not 0 < int(match["port"]) < 65536 or not 0 < int(match["component"]) < 256:
        raise SdpError("the candidate's port or component is out of range")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    if mid is None and index is None:
        raise SdpError("the candidate needs sdpMid or sdpMLineIndex")
    candidate = aiortc_sdp.candidate_from_sdp(line.removeprefix("candidate:"))
    candidate.sdpMid = None if mid is None else str(mid)
    candidate.sdpMLineIndex = None if index is None else int(index)
    return candidate
