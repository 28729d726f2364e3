"""The classroom's Socket.IO stack as a relay, for the side-by-side with Node (bench/peer/relay.js).

Built exactly like ``create_app`` builds the classroom's server (same options, the same
``classroom.signaling.fast`` wiring, the same process knobs as ``classroom serve``), with a
``/relay`` namespace doing the peer's join / relay / ack work instead of the classroom's events.

    python -m bench.relay_server --port N [--plain] [--loop uvloop] [--no-gc]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import socketio
from aiohttp import web

from classroom.signaling import fast


def invalid() -> dict[str, Any]:
    return {"ok": False, "error": {"code": "invalid_payload", "message": "room is required"}}


class RelayNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    async def on_join(self, sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("room"), str):
            return invalid()
        await self.enter_room(sid, "room:" + data["room"])
        return {"ok": True, "room": data["room"]}

    async def on_relay(self, sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("room"), str):
            return invalid()
        await self.emit("relay", data, room="room:" + data["room"], skip_sid=sid)
        return {"ok": True}


def build(*, signaling_fast: bool, gc_tuning: bool) -> web.Application:
    app = web.Application()
    activity = fast.Activity()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        ping_interval=2.0,
        ping_timeout=3.0,
        http_compression=False,
        compression_threshold=1 << 30,
        logger=False,
        engineio_logger=False,
        **fast.server_options(fast=signaling_fast),
    )
    fast.install(sio, fast=signaling_fast, deflate=False, activity=activity)
    sio.register_namespace(RelayNamespace("/relay"))
    sio.attach(app)
    if gc_tuning:
        app.cleanup_ctx.append(fast.gc_ctx(fast.GcScheduler(activity)))
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plain", action="store_true", help="python-socketio as shipped")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--no-gc", action="store_true", help="leave the garbage collector alone")
    args = parser.parse_args()
    app = build(signaling_fast=not args.plain, gc_tuning=not (args.plain or args.no_gc))
    loop: asyncio.AbstractEventLoop | None = None
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()
