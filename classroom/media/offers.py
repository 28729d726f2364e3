"""Server offers that keep what was negotiated (aiortc 1.16 renegotiation with browsers).

aiortc's ``createOffer`` resets every transceiver's ``_codecs`` and ``_headerExtensions`` to its
own defaults (VP8 = 97, mid = extension 1, ...). On a connection the browser offered first, that
re-numbers payload types and header extension ids of m-sections already in use (Chrome refuses:
"RTP extension ID reassignment not supported") and collides with the browser's numbers inside the
BUNDLE group. :func:`keep_negotiated` rewrites the offer: sections already negotiated keep their
codecs and extensions exactly; new sections reuse the numbers the connection already uses for the
same codec or extension, and take free ones otherwise. The transceivers get the same values back.
Checked by tests/unit/test_media_hooks.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc import sdp as aiortc_sdp

DYNAMIC_PAYLOAD_TYPES = range(96, 128)
EXTENSION_IDS = range(1, 15)  # one-byte header extensions


def _codec_key(codec: Any) -> tuple[Any, ...]:
    return (
        str(codec.mimeType).lower(),
        codec.clockRate,
        codec.channels,
        tuple(sorted((str(k), str(v)) for k, v in codec.parameters.items())),
    )


def _is_rtx(codec: Any) -> bool:
    return str(codec.mimeType).lower().endswith("/rtx")


class _Numbering:
    """Payload types and extension ids already in use on the connection."""

    def __init__(self, sections: Iterable[Any]) -> None:
        self.codec_pt: dict[tuple[Any, ...], int] = {}
        self.rtx_pt: dict[int, int] = {}  # apt -> rtx payload type
        self.used_pts: set[int] = set()
        self.extension_id: dict[str, int] = {}
        self.used_ids: set[int] = set()
        for media in sections:
            by_pt = {c.payloadType: c for c in media.rtp.codecs}
            for codec in media.rtp.codecs:
                self.used_pts.add(codec.payloadType)
                if _is_rtx(codec):
                    base = by_pt.get(codec.parameters.get("apt"))
                    if base is not None:
                        self.rtx_pt.setdefault(base.payloadType, codec.payloadType)
                else:
                    self.codec_pt.setdefault(_codec_key(codec), codec.payloadType)
            for extension in media.rtp.headerExtensions:
                self.extension_id.setdefault(extension.uri, extension.id)
                self.used_ids.add(extension.id)

    def _free_pt(self, preferred: int) -> int:
        if preferred not in self.used_pts:
            return preferred
        return next(pt for pt in DYNAMIC_PAYLOAD_TYPES if pt not in self.used_pts)

    def renumber(self, media: Any) -> None:
        codecs = [copy.deepcopy(c) for c in media.rtp.codecs]
        mapping: dict[int, int] = {}
        for codec in (c for c in codecs if not _is_rtx(c)):
            key = _codec_key(codec)
            pt = self.codec_pt.get(key)
            if pt is None:
                pt = self._free_pt(codec.payloadType)
                self.codec_pt[key] = pt
            mapping[codec.payloadType] = pt
            codec.payloadType = pt
            self.used_pts.add(pt)
        for codec in (c for c in codecs if _is_rtx(c)):
            apt = mapping.get(codec.parameters.get("apt"), codec.parameters.get("apt"))
            pt = self.rtx_pt.get(apt) if isinstance(apt, int) else None
            if pt is None:
                pt = self._free_pt(codec.payloadType)
                if isinstance(apt, int):
                    self.rtx_pt[apt] = pt
            codec.payloadType = pt
            codec.parameters = {**codec.parameters, "apt": apt}
            self.used_pts.add(pt)
        extensions = [copy.deepcopy(e) for e in media.rtp.headerExtensions]
        for extension in extensions:
            known = self.extension_id.get(extension.uri)
            if known is None:
                known = extension.id
                if known in self.used_ids:
                    known = next(i for i in EXTENSION_IDS if i not in self.used_ids)
                self.extension_id[extension.uri] = known
                self.used_ids.add(known)
            extension.id = known
        media.rtp.codecs = codecs
        media.rtp.headerExtensions = extensions
        media.fmt = [c.payloadType for c in codecs]


def keep_negotiated(pc: RTCPeerConnection, offer_sdp: str) -> str:
    """Rewrite aiortc's offer for ``pc`` so negotiated numbering stays; call before
    ``setLocalDescription`` (``pc.localDescription`` is still the last negotiated one)."""
    previous = pc.localDescription
    negotiated: dict[str, Any] = {}
    if previous is not None:
        for media in aiortc_sdp.SessionDescription.parse(previous.sdp).media:
            if media.kind in ("audio", "video") and media.rtp.muxId:
                negotiated[media.rtp.muxId] = media
    numbering = _Numbering(negotiated.values())
    offer = aiortc_sdp.SessionDescription.parse(offer_sdp)
    # createOffer numbered the m-lines of every transceiver (mids come with setLocalDescription)
    transceivers = {t._get_mline_index(): t for t in pc.getTransceivers()}
    for index, media in enumerate(offer.media):
        if media.kind not in ("audio", "video"):
            continue
        old = negotiated.get(media.rtp.muxId)
        if old is not None:
            media.rtp.codecs = old.rtp.codecs
            media.rtp.headerExtensions = old.rtp.headerExtensions
            media.fmt = [c.payloadType for c in old.rtp.codecs]
        else:
            numbering.renumber(media)
        transceiver = transceivers.get(index)
        if transceiver is not None:
            transceiver._codecs = copy.deepcopy(media.rtp.codecs)
            transceiver._headerExtensions = copy.deepcopy(media.rtp.headerExtensions)
    return str(offer)
