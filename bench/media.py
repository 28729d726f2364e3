"""Media benchmark: server CPU per forwarded 640x480@30 VP8 stream, forwarding vs re-encoding.

    python -m bench.media [--runs 3] [--warmup 3] [--window 10]

Per run and per mode (alternating order): a server process (``bench/media_server.py``: the
classroom's ``AiortcMediaGateway`` with ``media_loopback=True``, or a plain aiortc relay that
decodes and re-encodes) and, in this process, two aiortc clients on 127.0.0.1 — a publisher
sending 640x480@30 synthetic video in VP8 (a panning random texture, so the encoder spends its
bitrate) and a subscriber (its own track sends nothing). Once the subscriber has decoded the first
frame: ``--warmup`` s, then the server's user + system CPU (``/proc/<pid>/stat``) over ``--window``
s, as % of one core. Medians over runs and the ratio re-encode / forward;
bench/results/media-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import itertools
import json
import os
import time
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.harness import LOGS, PYTHON, Process, cpu_seconds, median, spawn, table, write_result
from classroom.media.ice import allow_loopback_candidates
from tests.integration.test_media_support import VIDEO_CLOCK, MediaClient, until

MODES = {
    "forward": "classroom gateway (forwards encoded frames)",
    "reencode": "plain aiortc relay (decode + re-encode)",
}
WIDTH, HEIGHT, FPS = 640, 480, 30


class PanningCamera(MediaStreamTrack):
    """640x480@30: a random texture panning 4 px a frame (motion an encoder can follow)."""

    kind = "video"

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self._width, self._height = width, height
        self._texture = os.urandom(2 * width * height)
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            due = self._start + self._count / FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        w, h = self._width, self._height
        offset = (self._count * 4) % w
        luma = b"".join(
            self._texture[row * 2 * w + offset : row * 2 * w + offset + w] for row in range(h)
        )
        frame = av.VideoFrame(w, h, "yuv420p")
        frame.planes[0].update(luma)
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = self._count * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class SilentTrack(MediaStreamTrack):
    """A video track that never produces a frame (the subscriber only needs a connection)."""

    kind = "video"

    async def recv(self) -> av.VideoFrame:
        await asyncio.Event().wait()
        raise MediaStreamError


def client(user: str, track: MediaStreamTrack) -> MediaClient:
    media = MediaClient(user, video=True, audio=False, video_codec="video/VP8", loopback_only=True)
    media.pc.getTransceivers()[0].sender.replaceTrack(track)
    return media


class Signaling:
    """Requests to the server process and its server offers, over its stdin/stdout."""

    def __init__(self, server: Process, clients: dict[str, MediaClient]) -> None:
        self.server = server
        self.clients = clients
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            message = json.loads(await self.server.readline(3600))
            if message.get("event") == "media_offer":
                await self.clients[message["user"]].send("media_offer", message["payload"])
            elif "id" in message and message["id"] in self.pending:
                future = self.pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]))
                else:
                    future.set_result(message["result"])

    async def call(self, op: str, user: str, sdp: str = "") -> Any:
        ident = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.server.send(json.dumps({"id": ident, "op": op, "user": user, "sdp": sdp}))
        return await asyncio.wait_for(future, 20)

    async def join(self, media: MediaClient) -> None:
        user = media.user_id
        self.clients[user] = media
        await self.call("open", user)

        async def answer(sdp: str) -> None:
            await self.call("answer", user, sdp)

        async def offer(sdp: str) -> dict[str, Any]:
            result: dict[str, Any] = await self.call("offer", user, sdp)
            return result

        media.answer_with(answer)
        await media.publish(offer)

    async def close(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


async def one(mode: str, warmup: float, window: float) -> dict[str, Any]:
    allow_loopback_candidates()  # the clients' host candidates on 127.0.0.1 as well
    argv = [PYTHON, "-m", "bench.media_server", "--mode", mode]
    clients: dict[str, MediaClient] = {}
    async with spawn(mode, argv, stdin=True, stderr_to=LOGS / f"media-{mode}.log") as server:
        ready = json.loads(await server.readline(30))
        assert ready.get("event") == "ready", ready
        signaling = Signaling(server, clients)
        try:
            subscriber = client("subscriber", SilentTrack())
            await signaling.join(subscriber)
            publisher = client("publisher", PanningCamera())
            await signaling.join(publisher)
            await until(
                lambda: subscriber.received("publisher", "video") > 0, 30, "the first frame"
            )
            await asyncio.sleep(warmup)
            bytes0 = await bytes_sent(publisher)
            frames0, cpu0, t0 = (
                subscriber.received("publisher", "video"),
                cpu_seconds(server.pid),
                time.monotonic(),
            )
            await asyncio.sleep(window)
            frames1, cpu1, t1 = (
                subscriber.received("publisher", "video"),
                cpu_seconds(server.pid),
                time.monotonic(),
            )
            bytes1 = await bytes_sent(publisher)
            return {
                "server_cpu_pct_of_core": 100 * (cpu1 - cpu0) / (t1 - t0),
                "frames_per_s_received": (frames1 - frames0) / (t1 - t0),
                "publisher_kbit_per_s": 8 * (bytes1 - bytes0) / 1000 / (t1 - t0),
                "window_s": t1 - t0,
            }
        finally:
            for media in clients.values():
                await media.close()
            await signaling.close()


async def bytes_sent(media: MediaClient) -> int:
    stats = await media.pc.getStats()
    return sum(s.bytesSent for s in stats.values() if s.type == "outbound-rtp")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    modes = list(MODES)
    for index in range(args.runs):
        order = modes if index % 2 == 0 else list(reversed(modes))
        record: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2)}
        for mode in order:
            record[mode] = await one(mode, args.warmup, args.window)
            print(f"run {index + 1} {mode}: {record[mode]}", flush=True)
        fwd, enc = record["forward"], record["reencode"]
        record["ratio"] = (
            enc["server_cpu_pct_of_core"] / fwd["server_cpu_pct_of_core"]
            if fwd["server_cpu_pct_of_core"]
            else None
        )
        runs.append(record)
    summary: dict[str, Any] = {
        mode: {k: median([r[mode][k] for r in runs]) for k in runs[0][mode]} for mode in modes
    }
    summary["ratio"] = median([r["ratio"] for r in runs])
    return {
        "runs": runs,
        "median": summary,
        "conditions": {
            "video": f"{WIDTH}x{HEIGHT}@{FPS} VP8, panning random texture",
            "warmup_s": args.warmup,
            "window_s": args.window,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    data = asyncio.run(run(args))
    m = data["median"]
    rows = [
        [
            MODES[mode],
            m[mode]["server_cpu_pct_of_core"],
            m[mode]["frames_per_s_received"],
            m[mode]["publisher_kbit_per_s"],
        ]
        for mode in MODES
    ]
    print()
    print(
        table(
            f"media: one 640x480@30 VP8 stream, server CPU, medians of {args.runs} runs",
            ["server", "% of a core", "frames/s received", "publisher kbit/s"],
            rows,
        )
    )
    print(f"re-encode / forward: {m['ratio']:.1f}x" if m["ratio"] else "ratio: -")
    print(f"\nwrote {write_result('media', data)}")


if __name__ == "__main__":
    main()
