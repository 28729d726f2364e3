"""Real aiortc clients for the media tests: synthetic camera and microphone, frame counting.

No tests here; imported by the other tests/integration/test_media*.py modules.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90000


class SyntheticCamera(MediaStreamTrack):
    """Small moving-grey frames at 30 fps (cheap to encode and decode)."""

    kind = "video"

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self._width = width
        self._height = height
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:  # pace like a camera (this is the media clock, not test synchronisation)
            due = self._start + self._count / 30
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame(self._width, self._height, "yuv420p")
        shade = (self._count * 7) % 200 + 20
        for index, plane in enumerate(frame.planes):
            plane.update(bytes([shade if index == 0 else 128]) * plane.buffer_size)
        frame.pts = self._count * (VIDEO_CLOCK // 30)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


Offerer = Callable[[str], Awaitable[dict[str, Any]]]
Answerer = Callable[[str], Awaitable[None]]


class MediaClient:
    """One participant's browser stand-in: publishes, answers server offers, counts frames."""

    def __init__(
        self,
        user_id: str,
        *,
        video: bool = True,
        audio: bool = True,
        video_codec: str = "",
        loopback_only: bool = False,
    ) -> None:
        self.user_id = user_id
        self.loopback_only = loopback_only
        self.hold_offers = False
        self.held: list[dict[str, Any]] = []
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: Counter[tuple[str, str]] = Counter()  # (publisher user_id, kind) -> frames
        self.first_frame_at: dict[tuple[str, str], float] = {}
        self.mapping: dict[str, str] = {}  # mid -> publisher user_id
        self.offers_answered = 0
        self.last_answer_sdp = ""
        self.answer_errors: list[Exception] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._answer: Answerer | None = None
        self._signal_lock = asyncio.Lock()
        if video:
            transceiver = self.pc.addTransceiver(SyntheticCamera(), direction="sendonly")
            if video_codec:
                capabilities = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in capabilities if c.mimeType.lower() == video_codec.lower()][:1]
                )
        if audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        self.pc.on("track", self._on_track)

    # -- signaling ----------------------------------------------------------------------------

    async def publish(self, offer_to_server: Offerer) -> dict[str, Any]:
        async with self._signal_lock:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            answer = await offer_to_server(self._filter(self.pc.localDescription.sdp))
            self.last_answer_sdp = answer["sdp"]
            await self.pc.setRemoteDescription(
                RTCSessionDescription(self._filter(answer["sdp"]), "answer")
            )
            self._map(answer)
            return answer

    def answer_with(self, answerer: Answerer) -> None:
        self._answer = answerer

    async def send(self, event: str, payload: dict[str, Any]) -> None:
        """The gateway's SignalSender for this participant."""
        if event == "media_offer" and self.hold_offers:
            self.held.append(payload)
        elif event == "media_offer":
            self._spawn(self._on_server_offer(payload))

    def release(self) -> None:
        """Answer the server offers held back so far."""
        self.hold_offers = False
        for offer in self.held:
            self._spawn(self._on_server_offer(offer))
        self.held = []

    async def _on_server_offer(self, offer: dict[str, Any]) -> None:
        assert self._answer is not None
        async with self._signal_lock:
            try:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(self._filter(offer["sdp"]), "offer")
                )
                self._map(offer)
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self._answer(self._filter(self.pc.localDescription.sdp))
                self.offers_answered += 1
            except Exception as exc:
                self.answer_errors.append(exc)

    def _filter(self, sdp: str) -> str:
        """With ``loopback_only``, keep only the ICE candidates on 127.0.0.1."""
        if not self.loopback_only:
            return sdp
        lines = sdp.split("\r\n")
        return "\r\n".join(
            line
            for line in lines
            if not line.startswith("a=candidate:") or line.split()[4] == "127.0.0.1"
        )

    def _map(self, description: dict[str, Any]) -> None:
        self.mapping = {t["mid"]: t["user_id"] for t in description.get("tracks", [])}

    # -- media --------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._spawn(self._consume(track, transceiver))

    async def _consume(self, track: MediaStreamTrack, transceiver: Any) -> None:
        try:
            while True:
                await track.recv()
                publisher = self.mapping.get(str(transceiver.mid), "?")
                key = (publisher, track.kind)
                self.frames[key] += 1
                self.first_frame_at.setdefault(key, time.monotonic())
        except MediaStreamError:
            pass

    def received(self, publisher: str, kind: str) -> int:
        return self.frames[(publisher, kind)]

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
