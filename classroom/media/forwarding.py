"""Forwarding encoded media between aiortc peer connections, without decoding it.

aiortc 1.16 always decodes what an ``RTCRtpReceiver`` receives, and its ``RTCRtpSender`` sends
``av.Packet``s from a track without encoding them (``Encoder.pack``). So we:

1. tap each publisher's receiver before its decoder: ``receive()`` hands the
   ``_RTCRtpReceiver__decoder_queue`` to a decoder thread and ``_handle_rtp_packet`` puts each
   reassembled ``(codec, JitterFrame)`` on it. We swap that queue (before ``receive()``) for
   :class:`DecoderQueueTap`, which sends frames to the :class:`Publication` and never to the
   decoder (its thread waits idle until the receiver stops);
2. give each subscriber's sender a :class:`ForwardedTrack` whose ``recv()`` returns ``av.Packet``s;
3. turn keyframe requests (PLI/FIR reach ``RTCRtpSender._send_keyframe``, which would only flag
   the encoder we do not use) into ``RTCRtpReceiver._send_rtcp_pli`` towards the publisher.

These private hooks (and the two :mod:`classroom.media.offers` needs to renegotiate with
browsers) are pinned: :func:`check_hooks` runs when the gateway starts, and
tests/unit/test_media_hooks.py and test_media_offers.py exercise each one, so an aiortc upgrade
that breaks them fails loudly.
"""

from __future__ import annotations

import asyncio
import fractions
import inspect
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiortc
import av
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

TESTED_AIORTC = "1.16."
DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
RECEIVER_STARTED = "_RTCRtpReceiver__started"
SEND_KEYFRAME = "_send_keyframe"
KEYFRAME_REQUEST_INTERVAL = 0.3  # seconds between two PLIs to one publisher
FORWARDED_MIME_TYPES = ("video/vp8", "video/h264", "audio/opus")
QUEUE_LIMIT = {"audio": 50, "video": 120}  # frames waiting for one subscriber's sender


class ForwardingUnsupported(RuntimeError):
    """The installed aiortc lacks a private hook the forwarding relies on."""


def check_hooks() -> None:
    """Raise :class:`ForwardingUnsupported` naming the first hook this aiortc does not have."""

    def names(function: Any) -> set[str]:
        return set(function.__code__.co_names)

    required = [
        (DECODER_QUEUE, names(RTCRtpReceiver.__init__), "RTCRtpReceiver.__init__"),
        (DECODER_QUEUE, names(RTCRtpReceiver.receive), "RTCRtpReceiver.receive"),
        (DECODER_QUEUE, names(RTCRtpReceiver._handle_rtp_packet), "_handle_rtp_packet"),
        (RECEIVER_STARTED, names(RTCRtpReceiver.receive), "RTCRtpReceiver.receive"),
        (SEND_KEYFRAME, names(RTCRtpSender._handle_rtcp_packet), "_handle_rtcp_packet"),
        ("pack", names(RTCRtpSender._next_encoded_frame), "_next_encoded_frame"),
        ("_codecs", names(RTCRtpTransceiver.__init__), "RTCRtpTransceiver.__init__"),
        # classroom/media/offers.py
        ("_headerExtensions", names(RTCPeerConnection.createOffer), "createOffer"),
        ("_set_mline_index", names(RTCPeerConnection.createOffer), "createOffer"),
        ("_get_mline_index", set(vars(RTCRtpTransceiver)), "RTCRtpTransceiver"),
    ]
    for name, found, where in required:
        if name not in found:
            raise ForwardingUnsupported(
                f"aiortc {aiortc.__version__}: {where} no longer uses {name}; "
                "media forwarding needs review (classroom/media/forwarding.py)"
            )
    pli = getattr(RTCRtpReceiver, "_send_rtcp_pli", None)
    if pli is None or list(inspect.signature(pli).parameters) != ["self", "media_ssrc"]:
        raise ForwardingUnsupported(
            f"aiortc {aiortc.__version__}: RTCRtpReceiver._send_rtcp_pli(media_ssrc) is gone"
        )
    if not aiortc.__version__.startswith(TESTED_AIORTC):
        log.warning(
            "media: aiortc %s is not the tested %sx; forwarding hooks are present",
            aiortc.__version__,
            TESTED_AIORTC,
        )


def negotiated_codec(transceiver: RTCRtpTransceiver) -> Any | None:
    """The codec a transceiver sends/receives with (first non-RTX negotiated codec)."""
    return next((c for c in transceiver._codecs if c.name.lower() != "rtx"), None)


def is_forwardable(codec: Any) -> bool:
    return str(codec.mimeType).lower() in FORWARDED_MIME_TYPES


def same_codec(a: Any, b: Any) -> bool:
    return bool(
        str(a.mimeType).lower() == str(b.mimeType).lower()
        and a.clockRate == b.clockRate
        and dict(a.parameters) == dict(b.parameters)
    )


def prefer_codec(transceiver: RTCRtpTransceiver, codec: Any) -> None:
    """Offer only ``codec`` (and RTX for video) on a forwarding transceiver."""
    preferences = [
        RTCRtpCodecCapability(
            mimeType=codec.mimeType,
            clockRate=codec.clockRate,
            channels=codec.channels,
            parameters=dict(codec.parameters),
        )
    ]
    if transceiver.kind == "video":
        preferences.append(RTCRtpCodecCapability(mimeType="video/rtx", clockRate=90000))
    transceiver.setCodecPreferences(preferences)


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (audio frames always can)."""
    name = codec_name.upper()
    if name == "VP8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for key frames
        return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"
    if name == "H264":
        position = data.find(b"\x00\x00\x01")
        while position != -1 and position + 3 < len(data):
            if data[position + 3] & 0x1F == 5:  # IDR slice
                return True
            position = data.find(b"\x00\x00\x01", position + 3)
        return False
    return True


class DecoderQueueTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: frames go to ``on_frame``, never to the decoder."""

    def __init__(self, on_frame: Callable[[Any, Any], None], on_end: Callable[[], None]) -> None:
        super().__init__()
        self._on_frame = on_frame
        self._on_end = on_end
        self.frames = 0
        self.decoder_items = 0  # items the decoder thread was given: must stay 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the receiver stops its decoder thread
            self._on_end()
            super().put(None, block, timeout)
            return
        codec, frame = item
        self.frames += 1
        self._on_frame(codec, frame)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if item is not None:
            self.decoder_items += 1
        return item


class Publication:
    """One track a participant sends to the server, fanned out to subscribers' senders."""

    def __init__(
        self,
        *,
        user_id: str,
        name: str,
        mid: str,
        transceiver: RTCRtpTransceiver,
        on_end: Callable[[Publication], None],
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.mid = mid
        self.kind: str = transceiver.kind
        self.codec = negotiated_codec(transceiver)
        self.media_ssrc: int | None = None
        self.subscribers: set[ForwardedTrack] = set()
        self.active = False  # the client's offer says it sends this track
        self.closed = False
        self.created_at = time.monotonic()
        self.last_frame_at: float | None = None
        self.packets_received = 0
        self.bytes_received = 0
        self.packets_forwarded = 0
        self.bytes_forwarded = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self._receiver = transceiver.receiver
        self._on_end = on_end
        self._last_request = -KEYFRAME_REQUEST_INTERVAL
        self._request_task: asyncio.Task[None] | None = None
        if getattr(self._receiver, RECEIVER_STARTED, True):
            raise ForwardingUnsupported("the receiver started before its decoder queue was tapped")
        self.tap = DecoderQueueTap(self._on_frame, self._ended)
        setattr(self._receiver, DECODER_QUEUE, self.tap)

    def _on_frame(self, codec: Any, frame: Any) -> None:
        if self.closed:
            return
        data: bytes = frame.data
        keyframe = is_keyframe(codec.name, data)
        self.last_frame_at = time.monotonic()
        self.packets_received += 1
        self.bytes_received += len(data)
        self.keyframes += keyframe
        for subscriber in list(self.subscribers):
            subscriber.push(data, frame.timestamp, codec.clockRate, keyframe)

    def _ended(self) -> None:
        if not self.closed:
            self._on_end(self)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (RTCP PLI), at most every 0.3 s."""
        now = time.monotonic()
        if self.closed or self.kind != "video":
            return
        if now - self._last_request < KEYFRAME_REQUEST_INTERVAL:
            return
        if self._request_task is not None and not self._request_task.done():
            return
        ssrc = self._ssrc()
        if ssrc is None:
            return
        self._last_request = now
        self.keyframe_requests += 1
        self._request_task = asyncio.get_running_loop().create_task(
            self._receiver._send_rtcp_pli(ssrc)
        )

    def _ssrc(self) -> int | None:
        if self.media_ssrc is not None:
            return self.media_ssrc
        sources = self._receiver.getSynchronizationSources()
        newest = max(sources, key=lambda s: s.timestamp, default=None)
        return None if newest is None else int(newest.source)

    def close(self) -> None:
        self.closed = True
        for subscriber in list(self.subscribers):
            subscriber.detach()
        if self._request_task is not None:
            self._request_task.cancel()


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber's sender reads: the encoded frames of one publication at a time.

    Detached, ``recv()`` waits. Video starts at a keyframe (others are dropped while waiting, and
    a keyframe is requested). Timestamps are rebased so they run on across publications.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: Publication | None = None
        self.packets = 0
        self.dropped = 0
        self.keyframe_requests_received = 0
        self._queue: deque[tuple[bytes, int, int]] = deque()
        self._ready = asyncio.Event()
        self._started = False
        self._waiting_keyframe = kind == "video"
        self._offset: int | None = None
        self._next = 0

    def attach(self, publication: Publication) -> None:
        self.detach()
        self.source = publication
        publication.subscribers.add(self)
        self._waiting_keyframe = self.kind == "video"
        self._offset = None
        if self._started:
            publication.request_keyframe()

    def detach(self) -> None:
        if self.source is not None:
            self.source.subscribers.discard(self)
            self.source = None
        self._queue.clear()

    def request_keyframe(self) -> None:
        """Installed as the sender's ``_send_keyframe``: the subscriber sent PLI or FIR."""
        self.keyframe_requests_received += 1
        if self.source is not None:
            self.source.request_keyframe()

    def push(self, data: bytes, timestamp: int, clock_rate: int, keyframe: bool) -> None:
        if not self._started or self.readyState != "live":
            return  # the sender has not started reading yet
        if self._waiting_keyframe:
            if not keyframe:
                self.dropped += 1
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._waiting_keyframe = False
        if len(self._queue) >= QUEUE_LIMIT[self.kind]:
            if self.kind == "video":  # a gap breaks the picture: restart from a keyframe
                self.dropped += len(self._queue) + 1
                self._queue.clear()
                self._waiting_keyframe = True
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((data, timestamp, clock_rate))
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        if not self._started:
            self._started = True
            if self.source is not None:
                self.source.request_keyframe()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        data, timestamp, clock_rate = self._queue.popleft()
        if self._offset is None:
            self._offset = self._next - timestamp
        pts = timestamp + self._offset
        self._next = pts + (clock_rate // 30 if self.kind == "video" else 960)
        packet: av.Packet[Any] = av.Packet(data)
        packet.pts = pts
        packet.time_base = fractions.Fraction(1, clock_rate)
        self.packets += 1
        if self.source is not None:
            self.source.packets_forwarded += 1
            self.source.bytes_forwarded += len(data)
        return packet

    def stop(self) -> None:
        super().stop()
        self.detach()
        self._ready.set()


def hook_keyframe_requests(sender: RTCRtpSender, track: ForwardedTrack) -> None:
    """Route the subscriber's PLI/FIR for this sender to the track's publisher."""
    setattr(sender, SEND_KEYFRAME, track.request_keyframe)
