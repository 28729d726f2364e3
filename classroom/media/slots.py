"""The server's ``sendonly`` transceivers on one peer connection ("slots").

Each slot carries one other participant's track. When that participant leaves, the slot turns
``inactive`` and is reused for the next publication of the same kind and codec, so joins and
leaves do not grow the SDP without bound. Assignments made for a server offer start forwarding
only once the client's answer is applied (before that the sender would drop the keyframe).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver

from classroom.media.forwarding import (
    ForwardedTrack,
    Publication,
    hook_keyframe_requests,
    negotiated_codec,
    prefer_codec,
    same_codec,
)

log = logging.getLogger(__name__)


class Slot:
    def __init__(self, transceiver: RTCRtpTransceiver, track: ForwardedTrack) -> None:
        self.transceiver = transceiver
        self.track = track
        self.kind = track.kind
        self.codec: Any | None = None  # known once an answer negotiated it
        self.publication: Publication | None = None  # assigned (maybe not yet negotiated)

    def unassign(self) -> None:
        self.publication = None
        self.track.detach()
        self.transceiver.direction = "inactive"

    def can_carry(self, publication: Publication) -> bool:
        return (
            self.publication is None
            and self.kind == publication.kind
            and self.codec is not None
            and same_codec(self.codec, publication.codec)
            and self.track.readyState == "live"
        )


class Slots:
    def __init__(self) -> None:
        self._slots: list[Slot] = []
        # A slot given up after an answer (``activate``): the client's map still shows it, so
        # the next ``reconcile`` asks for an offer even when it changes nothing itself.
        self._offer_due = False

    def __iter__(self) -> Iterator[Slot]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def owns(self, transceiver: RTCRtpTransceiver) -> bool:
        return any(slot.transceiver is transceiver for slot in self._slots)

    def reconcile(self, pc: RTCPeerConnection, wanted: list[Publication]) -> bool:
        """Assign slots to ``wanted``, adding transceivers if needed; True if an offer is due."""
        wanted_set = set(wanted)
        changed, self._offer_due = self._offer_due, False
        for existing in self._slots:
            publication = existing.publication
            if publication is not None and (
                publication not in wanted_set
                or (
                    existing.codec is not None and not same_codec(existing.codec, publication.codec)
                )
            ):
                existing.unassign()
                changed = True
        assigned = {slot.publication for slot in self._slots}
        for publication in wanted:
            if publication in assigned:
                continue
            slot: Slot | None = next((s for s in self._slots if s.can_carry(publication)), None)
            if slot is None:
                track = ForwardedTrack(publication.kind)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                prefer_codec(transceiver, publication.codec)
                hook_keyframe_requests(transceiver.sender, track)
                slot = Slot(transceiver, track)
                self._slots.append(slot)
            slot.transceiver.direction = "sendonly"
            slot.publication = publication
            changed = True
        return changed

    def activate(self) -> bool:
        """After an answer: forward into the slots it negotiated. True if another offer is due
        (a publication ended while the offer was out)."""
        again = False
        for slot in self._slots:
            if slot.codec is None:
                slot.codec = negotiated_codec(slot.transceiver)
            publication = slot.publication
            if publication is None or slot.track.source is publication:
                continue
            if publication.closed or not publication.active:
                slot.unassign()
                again = self._offer_due = True
            elif slot.codec is None or not same_codec(slot.codec, publication.codec):
                log.warning(
                    "media: the client refused the codec of %s's %s track",
                    publication.user_id,
                    publication.kind,
                )
                slot.unassign()
            else:
                slot.track.attach(publication)
        return again

    def tracks(self) -> list[dict[str, Any]]:
        """Which participant each slot (by ``mid``) carries, for the client."""
        return [
            {
                "mid": slot.transceiver.mid,
                "kind": slot.kind,
                "user_id": slot.publication.user_id,
                "name": slot.publication.name,
            }
            for slot in self._slots
            if slot.publication is not None and slot.transceiver.mid is not None
        ]

    def receiving(self) -> int:
        return sum(1 for slot in self._slots if slot.track.source is not None)

    def counters(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for slot in self._slots:
            totals["dropped"] += slot.track.dropped
            totals["keyframe_requests_received"] += slot.track.keyframe_requests_received
        return totals

    def stop(self) -> Counter[str]:
        """Stop every slot's track (its sender's loop ends); return their final counters."""
        totals = self.counters()
        for slot in self._slots:
            slot.track.stop()
        self._slots = []
        return totals
