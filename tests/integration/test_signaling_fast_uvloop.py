"""The signaling fast path on uvloop (``CLASSROOM_EVENT_LOOP=uvloop``): uvloop has no asyncio
ready queue to look at, so frames always go out in the next pass; the rest is the same. The test
runs its own uvloop loop (pytest-asyncio's loops are asyncio's)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvloop
from aiohttp import web

from tests.integration.test_signaling_fast import build, client


async def relays_and_acks() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    runner = web.AppRunner(build(True, False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    a, b = await client(url), await client(url)
    got: list[int] = []
    done = asyncio.Event()

    def record(data: Any) -> None:
        got.append(data["n"])
        if len(got) == 100:
            done.set()

    b.on("relayed", record, namespace="/echo")
    try:
        for sio in (a, b):
            assert (await sio.call("join", "r", namespace="/echo", timeout=5))["ok"]
        assert await a.call("echo", {"x": b"\x01"}, namespace="/echo", timeout=5) == {"x": b"\x01"}
        acks = await asyncio.gather(
            *(a.call("relay", ("r", {"n": n}), namespace="/echo", timeout=10) for n in range(100))
        )
        assert acks == [{"ok": True}] * 100
        async with asyncio.timeout(10):
            await done.wait()
        assert got == list(range(100))
    finally:
        for sio in (a, b):
            await sio.shutdown()
        await runner.cleanup()


def test_events_acks_and_relays_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(relays_and_acks(), 30))
