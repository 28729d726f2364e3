"""Memory per connected client: the slope of the servers' RSS against clients connected and joined.

The old figure — RSS growth over the join storm divided by the storm's 1000 clients — mixes what
a client costs with what grows with concurrency or with work done: it counts clients that never
joined, and it includes the reader pool and its caches growing to the storm's concurrency,
allocator arenas sized for a thousand requests in flight (freed memory stays in the process: RSS
does not go down), and the storm's garbage (``classroom serve`` freezes the start-up heap and
raises the collector's thresholds; full collections wait for a quiet moment, which a process with
hundreds of clients pinging never has, or for 5 minutes). It is still reported, next to this one.

This figure is measured on fresh server processes of their own (the same configuration, database
and — with two processes — Redis as the phases; their own key prefix), after the phases:

1. Read RSS (``/proc/<pid>/statm``, summed over the processes) once they are idle: R0.
2. ``--memory-steps`` steps (default 3): each connects, authenticates and joins the next
   ``--memory-step`` clients (default min(400, --sessions); the two participants of each of their
   sessions, spread over the processes like the storm's), ``--memory-concurrency`` at a time
   (default 10), and holds them; a client that does not join is disconnected and not counted.
   After step k, once the processes are idle again (no more than 0.2 of a core each over two
   0.5 s windows, at most ``--settle-max`` s): Rk.
3. Step k's figure is (Rk − Rk−1) / the clients joined in step k. The first step also pays for
   what any process pays once its first clients arrive (pools and caches filled to the step's
   concurrency, first-use imports and allocations) and is shown apart; **the figure is the slope
   over the later steps**: (Rlast − R1) / the clients joined in steps 2..last. Every step runs at
   the same concurrency and reads RSS in the same state, so what does not grow with clients is in
   both ends of the slope and cancels.

What remains in it besides the clients' own memory: garbage of their joins that the tuned
collector has not collected yet (small at this concurrency; it would be collected in the next
full collection), and page granularity (4 KB per process per reading, negligible over hundreds of
clients). The spread of the later steps' figures shows how steady the slope is.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bench.classroom_servers import Marks, drive_servers, scan_log, servers


async def memory_run(
    args: argparse.Namespace,
    tmp: Path,
    env: dict[str, str],
    sessions: list[dict[str, str]],
    logs: Path,
    redis: tuple[str, str] | None,
) -> dict[str, Any]:
    async with servers(env, args.processes, logs, redis) as started:
        await asyncio.sleep(1.0)
        marks = Marks(started, [], args.settle_max)
        config = {
            "kind": "memory",
            "urls": [s.url for s in started],
            "sessions": sessions,
            "steps": args.memory_steps,
            "concurrency": args.memory_concurrency,
        }
        timeout = 120 + (args.memory_steps + 1) * args.settle_max + 0.2 * 2 * len(sessions)
        load = await drive_servers(
            started,
            config,
            tmp / "memory.json",
            marks,
            timeout=timeout,
            stderr_to=logs / "load.log",
        )
    figures = memory_figures(marks, load["steps"])
    figures["server_log"] = [scan_log(s.log) for s in started]
    figures["concurrency"] = args.memory_concurrency
    return figures


def memory_figures(marks: Marks, steps: list[dict[str, Any]]) -> dict[str, Any]:
    readings = [marks.settled[f"mem-{k}"] for k in range(len(steps) + 1)]
    out = []
    for k, step in enumerate(steps, start=1):
        growth = readings[k]["rss"] - readings[k - 1]["rss"]
        each = [
            (after - before) / 1024
            for before, after in zip(
                readings[k - 1]["rss_each"], readings[k]["rss_each"], strict=True
            )
        ]
        out.append(
            {
                **step,
                "rss_growth_kb": growth / 1024,
                "rss_growth_kb_each_process": each,
                "kb_per_client": growth / step["joined"] / 1024 if step["joined"] else None,
            }
        )
    later = sum(s["joined"] for s in steps[1:])
    slope = None
    if later:
        slope = (readings[-1]["rss"] - readings[1]["rss"]) / later / 1024
    return {
        "kb_per_client": slope,
        "first_step_kb_per_client": out[0]["kb_per_client"] if out else None,
        "steps": out,
        "rss_mb": [r["rss"] / 2**20 for r in readings],
        "settle": [{"waited_s": r["waited_s"], "quiet": r["quiet"]} for r in readings],
        "clients_joined": sum(s["joined"] for s in steps),
    }
