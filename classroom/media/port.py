"""The media port: what rooms and signaling may ask of the media layer. No aiortc here.

One media connection (a WebRTC peer connection) per participant of a classroom, keyed by
``(session_id, user_id)``. The implementation forwards every participant's camera and microphone
to the others and renegotiates by sending server offers through the participant's
:data:`SignalSender`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from classroom.errors import ClassroomError

SignalSender = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``send(event, payload)``: emit a Socket.IO event to every socket of one participant."""

MediaStatus = Literal["connecting", "connected", "stalled", "failed"]
MEDIA_STATUSES: tuple[MediaStatus, ...] = ("connecting", "connected", "stalled", "failed")

StatusCallback = Callable[[str, str, MediaStatus], Awaitable[None]]
"""``on_status_change(session_id, user_id, status)``, awaited in a background task."""


class MediaGateway(Protocol):
    """Peer connections of every open classroom on this process.

    Offer/answer/candidate calls for one participant are serialised. Every method is safe to call
    for a participant or classroom that is unknown or already closed (it raises
    :class:`MediaNotOpen` where an answer is expected, and does nothing where not).
    """

    def ice_servers(self, user_id: str) -> list[dict[str, Any]]:
        """STUN/TURN servers for this user's browser (``RTCConfiguration.iceServers`` format)."""
        ...

    async def open_participant(
        self, session_id: str, user_id: str, name: str, send: SignalSender
    ) -> None:
        """Make the participant ready to negotiate; idempotent (a second call updates
        ``name`` and ``send`` and keeps the connection)."""
        ...

    async def handle_offer(
        self, session_id: str, user_id: str, sdp: str, type: str = "offer"
    ) -> dict[str, Any]:
        """Apply the client's offer; return ``{"sdp", "type": "answer", "tracks": [...]}``.

        An offer from a new client connection (new DTLS fingerprint or ICE ufrag), or any offer
        while the participant's connection failed, resets that connection and is answered, even
        while a server offer is unanswered (that offer is dropped).

        Raises :class:`NegotiationGlare` while a server offer to the same client connection is
        unanswered (the server is the impolite side), :class:`InvalidSdp` for a malformed or
        unusable offer (that participant's connection is reset first), :class:`MediaNotOpen` for
        an unknown participant.
        """
        ...

    async def handle_answer(
        self, session_id: str, user_id: str, sdp: str, type: str = "answer"
    ) -> None:
        """Apply the client's answer to the pending server offer."""
        ...

    async def handle_candidate(
        self, session_id: str, user_id: str, candidate: dict[str, Any] | None
    ) -> None:
        """Add a trickled client ICE candidate (browser ``RTCIceCandidateInit``; ``None`` or an
        empty ``candidate`` string means end of candidates)."""
        ...

    async def close_participant(self, session_id: str, user_id: str) -> None:
        """Close the participant's connection and stop forwarding their tracks; idempotent."""
        ...

    async def close_room(self, session_id: str) -> None:
        """Close every connection of the classroom; idempotent."""
        ...

    def stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        """Per user: status, packets/bytes received and forwarded, keyframe requests."""
        ...

    def media_status(self, session_id: str, user_id: str) -> MediaStatus | None:
        """The participant's media status, or ``None`` when they have no media connection."""
        ...

    async def close(self) -> None:
        """Close every classroom and background task (server shutdown); idempotent."""
        ...


class MediaUnavailable(ClassroomError):
    code = "media_unavailable"
    status = 503
    default_message = "Audio and video are not available on this server."


class MediaNotOpen(ClassroomError):
    code = "media_not_open"
    status = 409
    default_message = "Join the classroom before negotiating audio and video."


class InvalidSdp(ClassroomError):
    code = "invalid_sdp"
    status = 400
    default_message = (
        "The session description could not be used; the media connection was reset. "
        "Create a new RTCPeerConnection and send a new offer."
    )


class InvalidCandidate(ClassroomError):
    code = "invalid_candidate"
    status = 400
    default_message = (
        "The ICE candidate could not be used; the media connection was reset. "
        "Create a new RTCPeerConnection and send a new offer."
    )


class NegotiationGlare(ClassroomError):
    """The client offered while a server offer is pending. The error carries that ``offer``:
    roll back, answer it, then offer again."""

    code = "glare"
    status = 409
    default_message = (
        "The server has an offer pending: roll back your offer, answer the server's offer "
        "(included as 'offer'), then send yours again."
    )


class NoPendingOffer(ClassroomError):
    code = "no_pending_offer"
    status = 409
    default_message = "There is no server offer waiting for an answer."


class WrongConnection(ClassroomError):
    code = "wrong_connection"
    status = 409
    default_message = (
        "This answer comes from a different RTCPeerConnection than the one the server is "
        "connected to (another tab?)."
    )
