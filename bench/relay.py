"""Relay benchmark: the classroom's Socket.IO stack against the Node peer, side by side.

    python -m bench.relay [--runs 3] [--variants fast,node] [--quick]

Per run and per server (in alternating order): (1) throughput — 100 clients in 50 rooms, each
keeping 4 acknowledged relays in flight, relays delivered per server CPU-second over 5 s;
(2) latency — 500 clients in 250 rooms, 250 relays/s for 10 s, p50/p99 of send → delivered to the
other member. Prints medians and the ratio to the peer; writes bench/results/relay-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import (
    LOGS,
    PEER,
    PYTHON,
    cpu_seconds,
    drive_load,
    free_port,
    median,
    need_peer,
    spawn,
    table,
    wait_http,
    write_result,
)

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "node": ("Node socket.io 4.8 (peer)", ["node", str(PEER / "relay.js")]),
    "fast": ("classroom (fast path, asyncio)", [PYTHON, "-m", "bench.relay_server"]),
    "fast-uvloop": (
        "classroom (fast path, uvloop)",
        [PYTHON, "-m", "bench.relay_server", "--loop", "uvloop"],
    ),
    "fast-nogc": (
        "classroom (fast path, GC untouched)",
        [PYTHON, "-m", "bench.relay_server", "--no-gc"],
    ),
    "plain": ("python-socketio as shipped", [PYTHON, "-m", "bench.relay_server", "--plain"]),
}


async def one(variant: str, mode: str, load: dict[str, Any], tmp: Path) -> dict[str, Any]:
    port = free_port()
    argv = [*VARIANTS[variant][1], "--port" if variant != "node" else "", str(port)]
    argv = [a for a in argv if a]
    async with spawn(variant, argv, stderr_to=LOGS / f"relay-{variant}.log") as server:
        await wait_http(port)
        marks: dict[str, float] = {}

        def on_mark(name: str) -> None:
            marks[name] = cpu_seconds(server.pid)

        config = {"kind": "relay", "mode": mode, "url": f"http://127.0.0.1:{port}", **load}
        result = await drive_load(
            config,
            tmp / f"load-{variant}-{mode}.json",
            on_mark,
            timeout=90,
            stderr_to=LOGS / "load.log",
        )
        result["server_cpu_s"] = marks.get("end", 0.0) - marks.get("start", 0.0)
        return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    need_peer()
    variants = args.variants.split(",")
    throughput_load = {"clients": 100, "window": 4, "warmup_s": 2, "duration_s": 5}
    latency_load = {"clients": 500, "rate": 250, "warmup_s": 2, "duration_s": 10}
    if args.quick:
        throughput_load.update(duration_s=2, warmup_s=1)
        latency_load.update(duration_s=3, warmup_s=1)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as name:
        tmp = Path(name)
        for index in range(args.runs):
            order = variants if index % 2 == 0 else list(reversed(variants))
            record: dict[str, Any] = {}
            for variant in order:
                t = await one(variant, "throughput", throughput_load, tmp)
                per_cpu = t["delivered"] / t["server_cpu_s"] if t["server_cpu_s"] else None
                lat = await one(variant, "latency", latency_load, tmp)
                record[variant] = {
                    "relays_per_cpu_s": per_cpu,
                    "relays_per_s": t["delivered"] / (t["elapsed_ms"] / 1000),
                    "server_cpu_s": t["server_cpu_s"],
                    "throughput_failures": t["failures"],
                    "p50_ms": lat["delivery"]["p50"],
                    "p99_ms": lat["delivery"]["p99"],
                    "ack_p99_ms": lat["ack"]["p99"],
                    "latency_server_cpu_s": lat["server_cpu_s"],
                    "latency_failures": lat["failures"],
                }
                print(f"run {index + 1} {variant}: {record[variant]}", flush=True)
            runs.append(record)
    summary: dict[str, Any] = {}
    for variant in variants:
        keys = runs[0][variant].keys()
        summary[variant] = {k: median([r[variant][k] for r in runs]) for k in keys}
    peer = summary.get("node")
    for variant in variants:
        s = summary[variant]
        if peer and peer["relays_per_cpu_s"] and s["relays_per_cpu_s"]:
            s["ratio_vs_peer"] = s["relays_per_cpu_s"] / peer["relays_per_cpu_s"]
            s["p99_vs_peer"] = s["p99_ms"] / peer["p99_ms"] if peer["p99_ms"] else None
    return {"runs": runs, "median": summary, "load": [throughput_load, latency_load]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="fast,node")
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    args = parser.parse_args()
    data = asyncio.run(run(args))
    rows = [
        [
            VARIANTS[v][0],
            s["relays_per_cpu_s"],
            s.get("ratio_vs_peer"),
            s["p50_ms"],
            s["p99_ms"],
            s.get("p99_vs_peer"),
        ]
        for v, s in data["median"].items()
    ]
    print()
    print(
        table(
            f"relay: medians of {args.runs} runs",
            ["server", "relays/CPU-s", "x peer", "p50 ms @250/s", "p99 ms @250/s", "p99 x peer"],
            rows,
        )
    )
    print(f"\nwrote {write_result('relay', data)}")


if __name__ == "__main__":
    main()
