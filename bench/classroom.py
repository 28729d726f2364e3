"""The classroom's own figures — join storm, presence, memory per client, completion gate,
abrupt disconnect — on one `classroom serve` process, or on two sharing PostgreSQL and Redis.

    python -m bench.classroom [--runs 3] [--sessions 500] [--grace 3] [--processes 1|2]
        [--database sqlite|postgresql] [--pg-dsn postgresql://…/postgres] [--media on|off]
        [--redis-url redis://127.0.0.1:6379/0] [--memory-step N] [--memory-steps 3]
        [--ping-interval S] [--ping-timeout S] [--profile DIR [--profile-phase storm|presence|gate]]

Per run: --sessions two-person sessions (and those of the memory steps) are seeded in a fresh
database: a SQLite file (default with one process), or a PostgreSQL database created with
--pg-dsn's admin connection, migrated, dropped after the run (default with two). Fresh server
processes (``bench/classroom_servers.py``; the load starts once ``GET /readyz`` answers 200 on
each) and one load process (``bench/peer/load.js``, deflate requested and refused unless
configured) that

1. connects, authenticates and joins every client at once (join storm; server CPU per client
   from the idle servers to 1 s after the last ack);
2. has each student leave, 100/s, and times the tutor's ``presence`` without them (presence);
3. has each tutor ``log_time_and_leave``, 50/s, and times the ack (completion gate);
4. drops the students of the last 20 sessions — 10 by a TCP reset, 10 by going silent through a
   relay in the load process that at the drop stops forwarding and reading and never closes (no
   byte, FIN or RST reaches the server, as when a laptop lid closes) — spread over one ping
   interval, and times each from its drop to the tutor's presence without the student (abrupt
   disconnect; after the grace).

Before each phase the orchestrator waits (at most --settle-max s) until the servers are idle, so
that what a phase left queued (acks the load client gave up on) is not charged to the next.
Then memory per connected client, on fresh server processes: the slope of RSS against clients
joined (``bench/classroom_memory.py``), next to the old figure (RSS growth over the storm / the
storm's clients, joined or not).

``--processes 2``: two processes, one database, one Redis with a key prefix of the run's own
(deleted after), media off, a public URL each. Session i's tutor goes to process i mod 2 and its
student to the other, so presence, the leave the tutor sees and the completion gate cross
processes through Redis. Every figure of one process comes out of two; server CPU and RSS are
summed over both.

``--profile DIR`` attaches py-spy to each server for one phase (``Profiler``). Medians over
runs; ``bench/results/classroom-*.json``; the servers' and load client's logs in
``bench/results/logs/classroom-<time>-<pid>/`` (their warnings and errors counted in the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bench.classroom_memory import memory_run
from bench.classroom_servers import (
    SECRET,
    Marks,
    Profiler,
    Server,
    database,
    drive_servers,
    redis_prefix,
    scan_log,
    seed,
    servers,
)
from bench.harness import LOGS, ROOT, median, need_peer, table, write_result
from classroom.config import Settings
from tests.support import RECAP

PHASES = {  # phase -> (the mark that opens it, the mark that ends it)
    "storm": ("idle", "joined"),
    "presence": ("joined", "left"),
    "gate": ("left", "completed"),
}


async def one_run(args: argparse.Namespace, tmp: Path, index: int, logs: Path) -> dict[str, Any]:
    """One run: a fresh database; the phases on fresh servers; then the memory steps on fresh
    servers again (with two processes, each set on a Redis prefix of its own)."""
    async with database(args, tmp, index) as url:
        started = time.monotonic()
        memory_sessions = args.memory_step // 2 * args.memory_steps
        everything = await seed(url, args.sessions + memory_sessions)
        seed_s = time.monotonic() - started
        sessions, extra = everything[: args.sessions], everything[args.sessions :]
        env = {
            "CLASSROOM_DATABASE_URL": url,
            "CLASSROOM_JWT_SECRET": SECRET,
            "CLASSROOM_RECONNECT_GRACE": str(args.grace),
            "CLASSROOM_MAIL_DIR": str(tmp / "mail"),
            "CLASSROOM_SIGNALING_FAST": "false" if args.plain else "true",
            "CLASSROOM_GC_TUNING": "false" if args.plain else "true",
            "CLASSROOM_LOG_LEVEL": args.log_level,
        }
        if args.ping_interval is not None:
            env["CLASSROOM_PING_INTERVAL"] = str(args.ping_interval)
        if args.ping_timeout is not None:
            env["CLASSROOM_PING_TIMEOUT"] = str(args.ping_timeout)
        if args.media == "off":
            env["CLASSROOM_MEDIA_ENABLED"] = "false"
        async with _redis(args) as redis:
            result = await phases(args, tmp, index, env, sessions, logs / f"run{index}", redis)
        result["seed_s"] = seed_s
        result["memory"] = None
        if extra:
            async with _redis(args) as redis:
                result["memory"] = await memory_run(
                    args, tmp, env, extra, logs / f"run{index}-memory", redis
                )
        return result


@contextlib.asynccontextmanager
async def _redis(args: argparse.Namespace) -> AsyncIterator[tuple[str, str] | None]:
    if args.processes == 1:
        yield None
        return
    async with redis_prefix(args.redis_url) as prefix:
        yield args.redis_url, prefix


async def phases(
    args: argparse.Namespace,
    tmp: Path,
    index: int,
    env: dict[str, str],
    sessions: list[dict[str, str]],
    logs: Path,
    redis: tuple[str, str] | None,
) -> dict[str, Any]:
    """Storm, presence, gate, disconnect on fresh server process(es)."""
    async with servers(env, args.processes, logs, redis) as started:
        await asyncio.sleep(1.0)
        phase = PHASES[args.profile_phase] if args.profile else None
        profilers = [
            Profiler(
                phase, s.process.pid, Path(args.profile or ".") / _profile_name(args, index, k)
            )
            for k, s in enumerate(started)
        ]
        marks = Marks(started, profilers, args.settle_max)
        config = {
            "kind": "classroom",
            "urls": [s.url for s in started],
            "sessions": sessions,
            "disconnect_rooms": 20,
            "leave_rate": 100,
            "gate_rate": 50,
            "grace_s": args.grace,
            "ping_interval_s": args.ping_interval or Settings.model_fields["ping_interval"].default,
            "recap": RECAP,
        }
        timeout = 300 + 4 * args.settle_max + 0.1 * len(sessions)
        try:
            result = await drive_servers(
                started,
                config,
                tmp / "load.json",
                marks,
                timeout=timeout,
                stderr_to=logs / "load.log",
            )
        finally:
            for profiler in profilers:
                profiler.stop()
    result["server_log"] = [scan_log(s.log) for s in started]
    result["topology"] = topology(args, started, redis)
    clients = result["join_storm"]["clients"]
    at, start = marks.at, marks.settled["idle"]  # the storm starts once the servers are idle
    # The old figure: RSS growth over the storm over every client, joined or not.
    result["memory_per_client_kb"] = (at["joined"]["rss"] - start["rss"]) / clients / 1024
    result["server_rss_mb"] = {k: v["rss"] / 2**20 for k, v in at.items()}
    result["server_cpu_s"] = {k: v["cpu_s"] for k, v in at.items()}
    result["marks"] = at
    result["settled"] = marks.settled
    # Server CPU (every thread, every process) per client over the storm: what the load on a
    # shared machine does not change much, unlike the latencies.
    result["storm_cpu_ms_per_client"] = (at["joined"]["cpu_s"] - start["cpu_s"]) / clients * 1000
    return result


def _profile_name(args: argparse.Namespace, index: int, k: int) -> str:
    suffix = f"-p{k}" if args.processes > 1 else ""
    return f"classroom-{args.profile_phase}-{index}{suffix}.txt"


def topology(
    args: argparse.Namespace, started: list[Server], redis: tuple[str, str] | None
) -> dict[str, Any]:
    if redis is None:
        return {
            "processes": 1,
            "urls": [started[0].url],
            "database": args.database,
            "media_enabled": args.media == "on",
        }
    return {
        "processes": len(started),
        "urls": [s.url for s in started],
        "database": args.database,
        "redis": redis[0],
        "redis_prefix": redis[1],
        "media_enabled": False,
        "across": "each session's tutor on one process, its student on the other: presence, "
        "the leave the tutor sees and the completion gate cross processes through Redis",
    }


Figure = tuple[str, Callable[[dict[str, Any]], Any], str | tuple[str, str]]
FIGURES: list[Figure] = [  # label, value, target (one process, two processes)
    ("join storm total ms (all clients)", lambda r: r["join_storm"]["total_ms"], "<= 2000"),
    ("connect p50 ms (before the join)", lambda r: r["join_storm"]["connect"]["p50"], ""),
    ("join ack p50 ms", lambda r: r["join_storm"]["join_ack"]["p50"], ""),
    ("join ack p99 ms", lambda r: r["join_storm"]["join_ack"]["p99"], "<= 200"),
    ("join failures", lambda r: r["join_storm"]["failures"], "0"),
    ("server CPU ms per client (storm)", lambda r: r.get("storm_cpu_ms_per_client"), ""),
    ("load client CPU ms (storm)", lambda r: r["join_storm"].get("client_cpu_ms"), ""),
    ("presence p50 ms", lambda r: r["presence"]["latency"]["p50"], ""),
    ("presence p99 ms", lambda r: r["presence"]["latency"]["p99"], "<= 5"),
    ("presence failures", lambda r: r["presence"]["failures"], "0"),
    ("memory per client KB (slope)", lambda r: (r["memory"] or {}).get("kb_per_client"), "<= 40"),
    ("memory per client KB (storm growth / clients)", lambda r: r["memory_per_client_kb"], ""),
    ("completion ack p50 ms", lambda r: r["gate"]["ack"]["p50"], ""),
    ("completion ack p99 ms", lambda r: r["gate"]["ack"]["p99"], ("<= 20", "<= 40")),
    ("completion failures", lambda r: r["gate"]["failures"], "0"),
    ("TCP reset -> leave, max s", lambda r: _s(r["disconnect"]["reset"]["max"]), "<= grace + 3"),
    ("silent drop -> leave, p50 s", lambda r: _s(r["disconnect"]["silent"]["p50"]), ""),
    ("silent drop -> leave, max s", lambda r: _s(r["disconnect"]["silent"]["max"]), "<= grace + 3"),
    ("disconnect failures", lambda r: r["disconnect"]["failures"], "0"),
]


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _target(target: str | tuple[str, str], processes: int) -> str:
    return target if isinstance(target, str) else target[0 if processes == 1 else 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    need_peer()
    runs = []
    logs = LOGS / f"classroom-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as name:
        tmp = Path(name)
        for index in range(args.runs):
            result = await one_run(args, tmp, index, logs)
            runs.append(result)
            print(
                f"run {index + 1}: "
                + ", ".join(f"{label}={_fmt(get(result))}" for label, get, _ in FIGURES),
                flush=True,
            )
            memory = result["memory"]
            if memory:
                steps = ", ".join(_fmt(s["kb_per_client"]) for s in memory["steps"])
                print(f"  memory KB per client by step: {steps} (the first includes warm-up)")
            for scan in result["server_log"] + ((memory or {}).get("server_log") or []):
                if scan["errors"] or scan["warnings"] or scan["tracebacks"]:
                    print(
                        f"  {scan['log']}: {scan['errors']} errors, {scan['warnings']} "
                        f"warnings, {scan['tracebacks']} tracebacks: {scan['top'][:3]}"
                    )
    summary = {label: median([get(r) for r in runs]) for label, get, _ in FIGURES}
    return {
        "runs": runs,
        "median": summary,
        "grace_s": args.grace,
        "plain": args.plain,
        "database": args.database,
        "processes": args.processes,
        "media": args.media,
        "topology": runs[-1]["topology"] if runs else None,
        "memory_step_clients": args.memory_step,
        "ping": [args.ping_interval, args.ping_timeout],
        "logs": str(logs.relative_to(ROOT)),
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--plain", action="store_true", help="CLASSROOM_SIGNALING_FAST=false")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--ping-interval", type=float, help="CLASSROOM_PING_INTERVAL (s)")
    parser.add_argument("--ping-timeout", type=float, help="CLASSROOM_PING_TIMEOUT (s)")
    parser.add_argument(
        "--processes",
        type=int,
        choices=[1, 2],
        default=1,
        help="server processes; 2 share PostgreSQL and Redis, each session spanning both",
    )
    parser.add_argument(
        "--media",
        choices=["on", "off"],
        help="CLASSROOM_MEDIA_ENABLED (default: on with one process; off with two, see README)",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        help="default: sqlite with one process, postgresql with two",
    )
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "CLASSROOM_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin connection to a PostgreSQL server (--database postgresql)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CLASSROOM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis of --processes 2 (a key prefix of its own per run, deleted after)",
    )
    parser.add_argument(
        "--memory-step",
        type=int,
        help="clients joined per memory step (default: --sessions, at most 400)",
    )
    parser.add_argument("--memory-steps", type=int, default=3, help="0: no memory steps")
    parser.add_argument("--memory-concurrency", type=int, default=10)
    parser.add_argument(
        "--settle-max", type=float, default=20.0, help="longest wait for an idle server (s)"
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server(s) into DIR")
    parser.add_argument("--profile-phase", choices=sorted(PHASES), default="storm")
    args = parser.parse_args()
    if args.database is None:
        args.database = "sqlite" if args.processes == 1 else "postgresql"
    if args.media is None:
        args.media = "on" if args.processes == 1 else "off"
    if args.processes > 1 and args.media == "on":
        parser.error("--processes 2 runs with media off: each session spans both processes")
    if args.processes > 1 and args.database != "postgresql":
        parser.error("--processes 2 shares one PostgreSQL database: use --database postgresql")
    if args.memory_step is None:
        args.memory_step = min(400, args.sessions)
    args.memory_step -= args.memory_step % 2  # whole sessions: a tutor and a student each
    return args


def main() -> None:
    args = parse_args()
    data = asyncio.run(run(args))
    rows = [
        [label, data["median"][label], _target(target, args.processes)]
        for label, _, target in FIGURES
    ]
    where = (
        f"{args.database}, one process, media {args.media}"
        if args.processes == 1
        else f"{args.database}, two processes + Redis, media off, every session across both"
    )
    print()
    print(
        table(
            f"classroom: medians of {args.runs} runs ({where}, grace {args.grace} s)",
            ["figure", "median", "target"],
            rows,
        )
    )
    if args.processes > 1:
        print(data["topology"]["across"])
    spread = [r["join_storm"]["total_ms"] for r in data["runs"]]
    if len(spread) > 1:
        print(
            f"join storm total ms across runs: {[round(s) for s in spread]}, "
            f"stdev {statistics.stdev(spread):.0f}"
        )
    print(f"\nwrote {write_result('classroom', data)}")


if __name__ == "__main__":
    main()
