"""The server side of the media benchmark: one classroom's media, signaled over stdin/stdout.

    python -m bench.media_server --mode forward|reencode

``forward``: the classroom's :class:`AiortcMediaGateway` (``media_loopback=True``), which forwards
encoded frames. ``reencode``: a plain aiortc relay — each received track is added to the other
participants' connections as it is, so aiortc decodes it and encodes it again (what a server
without the forwarding tap costs). No aiohttp, no Socket.IO, no database: only media.

Protocol, one JSON object a line. In: ``{"id": n, "op": "open"|"offer"|"answer", "user": u,
"sdp": …}``; out: ``{"id": n, "result": …}`` or ``{"id": n, "error": "…"}``, and
``{"event": "media_offer", "user": u, "payload": {"sdp", "type", "tracks"}}`` for server offers.
Prints ``ready`` first. Ends when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from classroom.config import Settings
from classroom.media.gateway import AiortcMediaGateway
from classroom.media.ice import allow_loopback_candidates

SESSION = "bench-media"


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Forwarding:
    """The classroom's gateway."""

    def __init__(self) -> None:
        settings = Settings(jwt_secret="x" * 32, media_loopback=True, log_level="WARNING")
        self.gateway = AiortcMediaGateway(settings)

    async def open(self, user: str) -> None:
        async def send(event: str, payload: dict[str, Any]) -> None:
            emit({"event": event, "user": user, "payload": payload})

        await self.gateway.open_participant(SESSION, user, user, send)

    async def offer(self, user: str, sdp: str) -> dict[str, Any]:
        return await self.gateway.handle_offer(SESSION, user, sdp)

    async def answer(self, user: str, sdp: str) -> None:
        await self.gateway.handle_answer(SESSION, user, sdp)

    async def close(self) -> None:
        await self.gateway.close()


class Reencoding:
    """A plain aiortc relay: received tracks go, decoded, into the others' connections."""

    def __init__(self) -> None:
        allow_loopback_candidates()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.tracks: dict[str, list[tuple[str, MediaStreamTrack]]] = {}  # user -> (mid, track)
        self.lock = asyncio.Lock()
        self.background: set[asyncio.Task[None]] = set()

    async def open(self, user: str) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[user] = pc
        self.tracks[user] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for other in self.pcs:
                if other != user:
                    task = asyncio.ensure_future(self._send_to(other, user, track))
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)

    async def _send_to(self, user: str, publisher: str, track: MediaStreamTrack) -> None:
        async with self.lock:
            pc = self.pcs[user]
            transceiver = pc.addTransceiver(track, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            tracks = [{"mid": transceiver.mid, "user_id": publisher, "kind": track.kind}]
            local = pc.localDescription
            emit(
                {
                    "event": "media_offer",
                    "user": user,
                    "payload": {"sdp": local.sdp, "type": local.type, "tracks": tracks},
                }
            )

    async def offer(self, user: str, sdp: str) -> dict[str, Any]:
        async with self.lock:
            pc = self.pcs[user]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            local = pc.localDescription
            return {"sdp": local.sdp, "type": local.type, "tracks": []}

    async def answer(self, user: str, sdp: str) -> None:
        await self.pcs[user].setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs.values()))


async def handle(server: Forwarding | Reencoding, message: dict[str, Any]) -> None:
    try:
        op, user = message["op"], message["user"]
        result: Any = None
        if op == "open":
            await server.open(user)
        elif op == "offer":
            result = await server.offer(user, message["sdp"])
        elif op == "answer":
            await server.answer(user, message["sdp"])
        else:
            raise ValueError(f"unknown op {op!r}")
        emit({"id": message["id"], "result": result})
    except Exception as exc:
        emit({"id": message.get("id"), "error": f"{type(exc).__name__}: {exc}"})


async def main_async(mode: str) -> None:
    server: Forwarding | Reencoding = Forwarding() if mode == "forward" else Reencoding()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()
    emit({"event": "ready"})
    try:
        while line := await reader.readline():
            task = asyncio.ensure_future(handle(server, json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["forward", "reencode"], required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main_async(args.mode))


if __name__ == "__main__":
    main()
