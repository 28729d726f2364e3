"""The aiortc implementation of :class:`~classroom.media.port.MediaGateway`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from classroom.config import Settings
from classroom.errors import InvalidPayload
from classroom.media.forwarding import Publication, check_hooks
from classroom.media.ice import (
    allow_loopback_candidates,
    ice_servers_for,
    validate_ice_urls,
    warn_about_settings,
)
from classroom.media.peer import Peer
from classroom.media.port import MediaNotOpen, MediaStatus, SignalSender, StatusCallback

log = logging.getLogger(__name__)

SERVER_TURN_USER = "classroom-server"


class AiortcMediaGateway:
    """Every classroom's peer connections on this process; one :class:`Peer` per participant."""

    def __init__(self, settings: Settings, on_status_change: StatusCallback | None = None) -> None:
        check_hooks()
        validate_ice_urls(settings.ice_servers)
        warn_about_settings(settings)
        if settings.media_loopback:
            allow_loopback_candidates()
        self._settings = settings
        self._on_status_change = on_status_change
        self._rooms: dict[str, dict[str, Peer]] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- configuration ------------------------------------------------------------------------

    def ice_servers(self, user_id: str) -> list[dict[str, Any]]:
        return ice_servers_for(self._settings, user_id, time.time())

    def _configuration(self) -> RTCConfiguration:
        """Always an explicit list (maybe empty): aiortc would fall back to a public STUN."""
        servers = [
            RTCIceServer(
                urls=entry["urls"],
                username=entry.get("username"),
                credential=entry.get("credential"),
            )
            for entry in ice_servers_for(self._settings, SERVER_TURN_USER, time.time())
        ]
        return RTCConfiguration(iceServers=servers)

    # -- participants -------------------------------------------------------------------------

    async def open_participant(
        self, session_id: str, user_id: str, name: str, send: SignalSender
    ) -> None:
        if self._closed:
            raise MediaNotOpen("The media service is shutting down.")
        room = self._rooms.setdefault(session_id, {})
        peer = room.get(user_id)
        if peer is not None:
            peer.name = name
            peer.send = send
            return
        room[user_id] = Peer(
            session_id=session_id,
            user_id=user_id,
            name=name,
            send=send,
            configuration=self._configuration,
            others=lambda me: self._others(session_id, me),
            on_publications_changed=lambda me: self._renegotiate_others(session_id, me),
            on_state=lambda me: self._update_status(me),
        )
        # debug: "joined" says it at info; no media connection exists until the first offer
        log.debug("media: participant opened session=%s user=%s", session_id, user_id)
        self._ensure_watcher()

    def _peer(self, session_id: str, user_id: str) -> Peer:
        peer = self._rooms.get(session_id, {}).get(user_id)
        if peer is None:
            raise MediaNotOpen()
        return peer

    def _others(self, session_id: str, me: Peer) -> list[Publication]:
        room = self._rooms.get(session_id, {})
        return [p for peer in room.values() if peer is not me for p in peer.live_publications()]

    def _renegotiate_others(self, session_id: str, me: Peer) -> None:
        for peer in self._rooms.get(session_id, {}).values():
            if peer is not me:
                peer.request_negotiation()

    async def handle_offer(
        self, session_id: str, user_id: str, sdp: str, type: str = "offer"
    ) -> dict[str, Any]:
        if type != "offer":
            raise InvalidPayload("type: expected 'offer'")
        return await self._peer(session_id, user_id).handle_offer(sdp)

    async def handle_answer(
        self, session_id: str, user_id: str, sdp: str, type: str = "answer"
    ) -> None:
        if type != "answer":
            raise InvalidPayload("type: expected 'answer'")
        await self._peer(session_id, user_id).handle_answer(sdp)

    async def handle_candidate(
        self, session_id: str, user_id: str, candidate: dict[str, Any] | None
    ) -> None:
        await self._peer(session_id, user_id).handle_candidate(candidate)

    async def close_participant(self, session_id: str, user_id: str) -> None:
        room = self._rooms.get(session_id)
        peer = None if room is None else room.pop(user_id, None)
        if peer is None:
            return
        self._log_stats(peer, "closed")
        await peer.close()
        self._renegotiate_others(session_id, peer)
        if room is not None and not room:
            self._rooms.pop(session_id, None)

    async def close_room(self, session_id: str) -> None:
        room = self._rooms.pop(session_id, None)
        if not room:
            return
        for peer in room.values():
            self._log_stats(peer, "closed with the classroom")
        await asyncio.gather(*(peer.close() for peer in room.values()))
        log.info("media: classroom closed session=%s", session_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for session_id in list(self._rooms):
            await self.close_room(session_id)
        tasks = [t for t in (self._watch_task, *self._callbacks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watch_task = None
        self._callbacks.clear()

    # -- status and stats ---------------------------------------------------------------------

    def media_status(self, session_id: str, user_id: str) -> MediaStatus | None:
        peer = self._rooms.get(session_id, {}).get(user_id)
        return None if peer is None else peer.status

    def stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for user_id, peer in self._rooms.get(session_id, {}).items():
            counters = peer.counters()
            result[user_id] = {
                "status": peer.status,
                "connection": peer.connection_state,
                "publishing": sorted(p.kind for p in peer.live_publications()),
                "receiving": peer.slots.receiving(),
                "packets_received": counters.get("packets_received", 0),
                "bytes_received": counters.get("bytes_received", 0),
                "packets_forwarded": counters.get("packets_forwarded", 0),
                "bytes_forwarded": counters.get("bytes_forwarded", 0),
                "keyframes": counters.get("keyframes", 0),
                "keyframe_requests": counters.get("keyframe_requests", 0),
                "keyframe_requests_received": counters.get("keyframe_requests_received", 0),
                "dropped": counters.get("dropped", 0),
                "resets": peer.resets,
            }
        return result

    def forwarded_stream_count(self) -> int:
        """Tracks currently forwarded to subscribers on this process (for metrics)."""
        return sum(
            peer.slots.receiving() for room in self._rooms.values() for peer in room.values()
        )

    def connection_count(self) -> int:
        """Open peer connections (for tests and metrics): negotiated at least once, not closed."""
        return sum(
            1
            for room in self._rooms.values()
            for peer in room.values()
            if peer.connection_state not in ("new", "closed")
        )

    def _log_stats(self, peer: Peer, what: str) -> None:
        # at info for a participant who negotiated media; one who never did has nothing to tell
        # ("left" says it at info)
        level = logging.DEBUG if peer.connection_state == "new" else logging.INFO
        if not log.isEnabledFor(level):
            return
        counters = peer.counters()
        log.log(
            level,
            "media: participant %s session=%s user=%s status=%s received=%d/%dB "
            "forwarded=%d/%dB keyframe_requests=%d dropped=%d",
            what,
            peer.session_id,
            peer.user_id,
            peer.status,
            counters.get("packets_received", 0),
            counters.get("bytes_received", 0),
            counters.get("packets_forwarded", 0),
            counters.get("bytes_forwarded", 0),
            counters.get("keyframe_requests", 0),
            counters.get("dropped", 0),
        )

    def _update_status(self, peer: Peer) -> None:
        if peer.closed:
            return
        status = peer.compute_status(time.monotonic(), self._settings.reconnect_grace)
        if status == peer.status:
            return
        previous, peer.status = peer.status, status
        level = logging.WARNING if status in ("failed", "stalled") else logging.INFO
        log.log(
            level,
            "media: status %s -> %s session=%s user=%s",
            previous,
            status,
            peer.session_id,
            peer.user_id,
        )
        if self._on_status_change is not None:
            task = asyncio.get_running_loop().create_task(
                self._notify(peer.session_id, peer.user_id, status)
            )
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    async def _notify(self, session_id: str, user_id: str, status: MediaStatus) -> None:
        assert self._on_status_change is not None
        try:
            await self._on_status_change(session_id, user_id, status)
        except Exception:
            log.exception(
                "media: status callback failed session=%s user=%s status=%s",
                session_id,
                user_id,
                status,
            )

    def _ensure_watcher(self) -> None:
        if self._watch_task is None or self._watch_task.done():
            self._watch_task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Notice media that stopped flowing (no event tells us that)."""
        interval = min(1.0, max(0.05, self._settings.reconnect_grace / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                for room in list(self._rooms.values()):
                    for peer in list(room.values()):
                        self._update_status(peer)
            except Exception:
                log.exception("media: status check failed")
