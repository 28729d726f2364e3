"""One participant's peer connection: negotiation (one writer at a time), publications, slots.

The client publishes with its offers; the server sends the others' tracks on ``sendonly``
transceivers (:mod:`classroom.media.slots`) added by server offers. Glare: the server is the
impolite side, a client offer that crosses a pending server offer is refused with that offer
attached (see docs/protocol.md) — unless it comes from a new client connection or the server's
connection failed: then the server starts over (its pending offer is dropped) and answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from classroom.errors import InvalidState
from classroom.media.forwarding import (
    ForwardingUnsupported,
    Publication,
    is_forwardable,
    negotiated_codec,
)
from classroom.media.offers import keep_negotiated
from classroom.media.port import (
    InvalidCandidate,
    InvalidSdp,
    MediaNotOpen,
    MediaStatus,
    NegotiationGlare,
    NoPendingOffer,
    SignalSender,
    WrongConnection,
)
from classroom.media.sdp import Description, SdpError, parse_candidate, parse_description
from classroom.media.slots import Slots

log = logging.getLogger(__name__)

CLOSE_WAIT_SECONDS = 10.0  # the longest a close waits for a negotiation under way

PUBLISHING_DIRECTIONS = ("sendonly", "sendrecv")  # as the client writes them in its offer


class Peer:
    def __init__(
        self,
        *,
        session_id: str,
        user_id: str,
        name: str,
        send: SignalSender,
        configuration: Callable[[], RTCConfiguration],
        others: Callable[[Peer], list[Publication]],
        on_publications_changed: Callable[[Peer], None],
        on_state: Callable[[Peer], None],
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.name = name
        self.send = send
        self.status: MediaStatus = "connecting"
        self.closed = False
        self.resets = 0
        self.publications: dict[str, Publication] = {}
        self.slots = Slots()
        self.totals: Counter[str] = Counter()
        self._configuration = configuration
        self._others = others
        self._on_publications_changed = on_publications_changed
        self._on_state = on_state
        self._lock = asyncio.Lock()
        self._remote_identity: tuple[str | None, tuple[str, ...]] | None = None
        self._negotiation_needed = False
        self._negotiation_task: asyncio.Task[None] | None = None
        self._connected_at: float | None = None
        self._pc: RTCPeerConnection | None = None

    def __repr__(self) -> str:
        return f"Peer(session={self.session_id}, user={self.user_id})"

    @property
    def pc(self) -> RTCPeerConnection:
        """The peer connection, made when the client first negotiates: a participant who never
        sends an offer (presence only, or before the camera starts) costs no certificate, DTLS
        or ICE state."""
        if self._pc is None:
            self._pc = self._new_pc()
        return self._pc

    @property
    def connection_state(self) -> str:
        """The peer connection's state; ``new`` before the client first negotiates."""
        return self._pc.connectionState if self._pc is not None else "new"

    # -- client-driven negotiation ------------------------------------------------------------

    async def handle_offer(self, sdp: str) -> dict[str, Any]:
        async with self._lock:
            self._check_open()
            description = await self._parse(sdp, "offer")
            # Starting over comes first: a pending server offer belongs to the old connection,
            # which the new one could neither answer nor roll back.
            if self.pc.connectionState in ("failed", "closed"):
                await self._reset(f"new offer on a {self.pc.connectionState} connection")
            elif not self._same_client(description):
                await self._reset("offer from a new client connection")
            elif self.pc.signalingState == "have-local-offer":
                raise NegotiationGlare(offer=self._description_payload())
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                self._sync_publications(description)
                await self.pc.setLocalDescription(await self.pc.createAnswer())
            except Exception as exc:
                await self._reset(f"offer refused ({type(exc).__name__}: {exc})")
                raise InvalidSdp(
                    f"The offer could not be applied ({exc or type(exc).__name__}); the media "
                    "connection was reset. Create a new RTCPeerConnection and send a new offer."
                ) from None
            if description.fingerprints or self._remote_identity is None:
                self._remote_identity = description.identity
            answer = self._description_payload()
        self.request_negotiation()
        return answer

    async def handle_answer(self, sdp: str) -> None:
        async with self._lock:
            self._check_open()
            if self.pc.signalingState != "have-local-offer":
                raise NoPendingOffer()
            description = await self._parse(sdp, "answer")
            if not self._same_client(description):
                raise WrongConnection()
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                await self._reset(f"answer refused ({type(exc).__name__}: {exc})")
                raise InvalidSdp(
                    f"The answer could not be applied ({exc or type(exc).__name__}); the media "
                    "connection was reset. Create a new RTCPeerConnection and send a new offer."
                ) from None
            if description.fingerprints:
                self._remote_identity = description.identity
            if self.slots.activate():
                self._negotiation_needed = True
            again = self._negotiation_needed
        if again:
            self.request_negotiation()

    async def handle_candidate(self, value: dict[str, Any] | None) -> None:
        async with self._lock:
            self._check_open()
            try:
                candidate = None if value is None else parse_candidate(value)
            except SdpError as exc:
                await self._reset(f"malformed candidate: {exc}")
                raise InvalidCandidate(
                    f"Malformed ICE candidate ({exc}); the media connection was reset. "
                    "Create a new RTCPeerConnection and send a new offer."
                ) from None
            if self._remote_identity is None:
                raise InvalidState("Send media_offer before ICE candidates.")
            try:
                await self.pc.addIceCandidate(candidate)
            except Exception as exc:  # well-formed but unusable (e.g. after end-of-candidates)
                log.debug("media: candidate ignored session=%s user=%s: %s", *self._ids, exc)

    def _same_client(self, description: Description) -> bool:
        """Whether a description comes from the client connection we negotiated with (an
        offer without media sections, from a client that only receives, tells nothing)."""
        known = self._remote_identity
        if known is None or not known[1] or not description.fingerprints:
            return True
        return description.identity == known

    async def _parse(self, sdp: str, kind: str) -> Description:
        try:
            return parse_description(sdp, kind)
        except SdpError as exc:
            await self._reset(f"malformed {kind}: {exc}")
            raise InvalidSdp(
                f"Malformed {kind}: {exc}. The media connection was reset; create a new "
                "RTCPeerConnection and send a new offer."
            ) from None

    def _sync_publications(self, description: Description) -> None:
        sections = {section.mid: section for section in description.media}
        changed = False
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is None or self.slots.owns(transceiver):
                continue
            mid = str(transceiver.mid)
            section = sections.get(mid)
            publishing = (
                section is not None
                and section.direction in PUBLISHING_DIRECTIONS
                and transceiver.receiver.track is not None
            )
            publication = self.publications.get(mid)
            if publishing and publication is None:
                codec = negotiated_codec(transceiver)
                if codec is None or not is_forwardable(codec):
                    log.warning(
                        "media: not forwarding %s track session=%s user=%s: codec %s",
                        transceiver.kind,
                        *self._ids,
                        None if codec is None else codec.mimeType,
                    )
                    continue
                try:
                    publication = Publication(
                        user_id=self.user_id,
                        name=self.name,
                        mid=mid,
                        transceiver=transceiver,
                        on_end=self._publication_ended,
                    )
                except ForwardingUnsupported as exc:  # its receiver ended and cannot restart
                    log.warning(
                        "media: not forwarding %s track session=%s user=%s: %s",
                        transceiver.kind,
                        *self._ids,
                        exc,
                    )
                    continue
                self.publications[mid] = publication
                log.info(
                    "media: publishing %s (%s) session=%s user=%s",
                    publication.kind,
                    codec.mimeType,
                    *self._ids,
                )
            if publication is None:
                continue
            if section is not None and section.primary_ssrc is not None:
                publication.media_ssrc = section.primary_ssrc
            if publication.active != publishing:
                publication.active = publishing
                changed = True
        if changed:
            self._on_publications_changed(self)

    def _publication_ended(self, publication: Publication) -> None:
        log.info("media: %s track ended session=%s user=%s", publication.kind, *self._ids)
        self._discard_publication(publication)
        self._on_publications_changed(self)

    def live_publications(self) -> list[Publication]:
        return [p for p in self.publications.values() if p.active and not p.closed]

    # -- server-driven negotiation ------------------------------------------------------------

    def request_negotiation(self) -> None:
        """Bring the slots in line with the others' publications (a server offer) when possible."""
        if self.closed:
            return
        self._negotiation_needed = True
        if self._negotiation_task is None or self._negotiation_task.done():
            self._negotiation_task = asyncio.get_running_loop().create_task(self._negotiate())

    def _can_offer(self) -> bool:
        return (
            not self.closed
            and self._remote_identity is not None
            and self.pc.signalingState == "stable"
            and self.pc.connectionState not in ("failed", "closed")
        )

    async def _negotiate(self) -> None:
        try:
            async with self._lock:
                while self._negotiation_needed and self._can_offer():
                    self._negotiation_needed = False
                    if not self._reconcile():
                        continue
                    offer = await self.pc.createOffer()
                    sdp = keep_negotiated(self.pc, offer.sdp)
                    await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                    payload = self._description_payload()
                    log.info(
                        "media: server offer session=%s user=%s tracks=%d",
                        *self._ids,
                        len(payload["tracks"]),
                    )
                    try:
                        await self.send("media_offer", payload)
                    except Exception as exc:
                        log.warning(
                            "media: could not send offer session=%s user=%s: %s", *self._ids, exc
                        )
        except asyncio.CancelledError:
            raise
        except Exception:
            if not self.closed:
                log.exception("media: renegotiation failed session=%s user=%s", *self._ids)

    def _reconcile(self) -> bool:
        """Assign slots to the others' live publications; True when an offer is needed."""
        wanted = [p for p in self._others(self) if p.codec is not None]
        return self.slots.reconcile(self.pc, wanted)

    def _description_payload(self) -> dict[str, Any]:
        local = self.pc.localDescription
        return {"sdp": local.sdp, "type": local.type, "tracks": self.slots.tracks()}

    # -- lifecycle ----------------------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._configuration())

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is not self._pc or self.closed:
                return
            if pc.connectionState == "connected" and self._connected_at is None:
                self._connected_at = time.monotonic()
            log.info("media: connection %s session=%s user=%s", pc.connectionState, *self._ids)
            self._on_state(self)

        self._connected_at = None
        return pc

    async def _reset(self, reason: str) -> None:
        """Start over with a fresh peer connection (the client must offer again)."""
        if self.closed:  # closed while this call was under way: no new connection
            raise MediaNotOpen()
        log.warning("media: resetting connection session=%s user=%s: %s", *self._ids, reason)
        old = self.pc
        self.resets += 1
        self._remote_identity = None
        self._negotiation_needed = False
        self._drop_media(notify=True)
        self._pc = self._new_pc()
        await old.close()
        self._on_state(self)

    def _drop_media(self, *, notify: bool) -> None:
        had_publications = bool(self.live_publications())
        for publication in list(self.publications.values()):
            self._discard_publication(publication)
        self.totals.update(self.slots.stop())
        if notify and had_publications:
            self._on_publications_changed(self)

    def _discard_publication(self, publication: Publication) -> None:
        publication.close()
        if self.publications.get(publication.mid) is publication:
            del self.publications[publication.mid]
            for key in ("packets_received", "bytes_received", "packets_forwarded"):
                self.totals[key] += getattr(publication, key)
            for key in ("bytes_forwarded", "keyframes", "keyframe_requests"):
                self.totals[key] += getattr(publication, key)

    async def close(self) -> None:
        """Idempotent; the others' renegotiation is the caller's business."""
        if self.closed:
            return
        self.closed = True
        # Let a negotiation under way (client or server offer) finish first: closing a connection,
        # or cancelling it, while aioice is still binding its candidate sockets leaves those
        # sockets open (they join aioice's list after close() has emptied it). No new round
        # starts once ``closed`` is set, and host candidates gather in milliseconds.
        task = self._negotiation_task
        try:
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                async with self._lock:
                    pass
                if task is not None:
                    await asyncio.gather(task, return_exceptions=True)
        except TimeoutError:
            log.warning("media: closing during a stuck negotiation session=%s user=%s", *self._ids)
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._drop_media(notify=False)
        if self._pc is not None:
            await self._pc.close()

    def compute_status(self, now: float, grace: float) -> MediaStatus:
        state = self.connection_state
        if state in ("failed", "closed"):
            return "failed"
        if state != "connected" or self._connected_at is None:
            return "connecting"
        live = self.live_publications()
        if live:
            last = max(p.last_frame_at or p.created_at for p in live)
            if now - max(last, self._connected_at) > grace:
                return "stalled"
        return "connected"

    def counters(self) -> dict[str, int]:
        totals = Counter(self.totals)
        for publication in self.publications.values():
            for key in ("packets_received", "bytes_received", "packets_forwarded"):
                totals[key] += getattr(publication, key)
            for key in ("bytes_forwarded", "keyframes", "keyframe_requests"):
                totals[key] += getattr(publication, key)
        totals.update(self.slots.counters())
        return dict(totals)

    def _check_open(self) -> None:
        if self.closed:
            raise MediaNotOpen()

    @property
    def _ids(self) -> tuple[str, str]:
        return self.session_id, self.user_id
