"""The classroom's own figures on one `classroom serve` process (seeded directly).

    python -m bench.classroom [--runs 3] [--sessions 500] [--grace 3] [--profile DIR]
                              [--database sqlite|postgresql [--pg-dsn postgresql://…/postgres]]

``--profile DIR [--profile-phase storm|presence|gate]`` attaches py-spy to the server during that
phase of each run (see ``Profiler``).

Per run: 500 two-person sessions seeded in a fresh database (a SQLite file, or a PostgreSQL
database created with ``--pg-dsn``'s admin connection, migrated, dropped after the run); one server
process; one load process (bench/peer/load.js) that (1) connects, authenticates and joins all 1000
clients at once (join storm), (2) holds them (memory per connected client: server RSS after /
before, deflate requested by the clients and refused unless configured), (3) has each student
leave, paced, and times the tutor's `presence` (presence latency), (4) has each tutor
`log_time_and_leave` (the completion gate's ack), (5) drops 20 students abruptly — 10 TCP resets,
10 gone silent — and times the leave the tutor sees (abrupt disconnect). Medians over runs;
bench/results/classroom-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.harness import (
    LOGS,
    ROOT,
    cpu_seconds,
    drive_load,
    free_port,
    median,
    need_peer,
    rss_bytes,
    spawn,
    table,
    wait_http,
    write_result,
)
from classroom.auth import Identity, TokenCodec
from classroom.db.engine import Database
from classroom.db.migrate import upgrade
from tests.support import RECAP, seed_session

SECRET = "bench-secret-" + "x" * 32


async def seed(url: str, count: int) -> list[dict[str, str]]:
    await upgrade(url)
    db = Database(url)
    codec = TokenCodec(SECRET)
    sessions = []
    try:
        for i in range(count):
            tutor = Identity(f"bench-tutor-{i}", "tutor", f"Tutor {i}", f"t{i}@bench.test")
            student = Identity(f"bench-student-{i}", "student", f"Student {i}", f"s{i}@bench.test")
            session_id = await seed_session(db, tutor, [student])
            sessions.append(
                {
                    "id": session_id,
                    "tutor_id": tutor.user_id,
                    "student_id": student.user_id,
                    "tutor_token": codec.encode(
                        tutor.user_id, "tutor", tutor.name, tutor.email, ()
                    ),
                    "student_token": codec.encode(
                        student.user_id, "student", student.name, student.email, ()
                    ),
                }
            )
    finally:
        await db.close()
    return sessions


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace, tmp: Path, index: int) -> AsyncIterator[str]:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database created on the
    server of ``--pg-dsn`` (dropped afterwards); migrated by ``seed``."""
    if args.database == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / f'bench-{index}.db'}"
        return
    import asyncpg

    name = f"classroom_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = args.pg_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(args.pg_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def one_run(args: argparse.Namespace, tmp: Path, index: int) -> dict[str, Any]:
    async with database(args, tmp, index) as url:
        return await _one_run(args, tmp, index, url)


async def _one_run(args: argparse.Namespace, tmp: Path, index: int, url: str) -> dict[str, Any]:
    sessions = await seed(url, args.sessions)
    port = free_port()
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
    argv = [str(ROOT / ".venv/bin/classroom"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    async with spawn("classroom", argv, env=env, stderr_to=LOGS / "classroom-server.log") as server:
        await wait_http(port, timeout=60)
        await asyncio.sleep(1.0)
        profiler = Profiler(args, server.pid, index)
        marks: dict[str, tuple[float, int]] = {}

        def on_mark(name: str) -> None:
            marks[name] = (cpu_seconds(server.pid), rss_bytes(server.pid))
            profiler.at_mark(name)

        config = {
            "kind": "classroom",
            "url": f"http://127.0.0.1:{port}",
            "sessions": sessions,
            "disconnect_rooms": 20,
            "leave_rate": 100,
            "gate_rate": 50,
            "grace_s": args.grace,
            "recap": RECAP,
        }
        try:
            result = await drive_load(
                config, tmp / "load.json", on_mark, timeout=180, stderr_to=LOGS / "load.log"
            )
        finally:
            profiler.stop()
    clients = result["join_storm"]["clients"]
    result["memory_per_client_kb"] = (marks["joined"][1] - marks["idle"][1]) / clients / 1024
    result["server_rss_mb"] = {k: v[1] / 2**20 for k, v in marks.items()}
    result["server_cpu_s"] = {k: v[0] for k, v in marks.items()}
    # Server CPU (every thread) per client over the storm: what the load on a shared machine
    # does not change much, unlike the latencies.
    result["storm_cpu_ms_per_client"] = (marks["joined"][0] - marks["idle"][0]) / clients * 1000
    return result


PHASES = {  # phase -> (the mark that opens it, the mark that ends it)
    "storm": ("idle", "joined"),
    "presence": ("joined", "left"),
    "gate": ("left", "completed"),
}


class Profiler:
    """py-spy attached to the server for one phase (between two of the load client's marks):
    the thread holding the GIL, 100 samples/s, collapsed stacks in
    DIR/classroom-<phase>-<run>.txt."""

    def __init__(self, args: argparse.Namespace, pid: int, index: int) -> None:
        self.phase = PHASES[args.profile_phase] if args.profile else None
        self.out = Path(args.profile or ".") / f"classroom-{args.profile_phase}-{index}.txt"
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None

    def at_mark(self, name: str) -> None:
        if self.phase is None:
            return
        if name == self.phase[0]:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            py_spy = str(ROOT / ".venv/bin/py-spy")
            argv = [py_spy, "record", "--pid", str(self.pid), "-r", "100", "-f", "raw", "--gil"]
            self.proc = subprocess.Popen(
                [*argv, "-o", str(self.out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            time.sleep(1.0)  # attached before the phase starts
        elif name == self.phase[1]:
            self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


FIGURES = [
    ("join storm total ms (all clients)", lambda r: r["join_storm"]["total_ms"], "<= 2000"),
    ("join ack p99 ms", lambda r: r["join_storm"]["join_ack"]["p99"], "<= 200"),
    ("join failures", lambda r: r["join_storm"]["failures"], "0"),
    ("server CPU ms per client (storm)", lambda r: r.get("storm_cpu_ms_per_client"), ""),
    ("presence p50 ms", lambda r: r["presence"]["latency"]["p50"], ""),
    ("presence p99 ms", lambda r: r["presence"]["latency"]["p99"], "<= 5"),
    ("memory per client KB", lambda r: r["memory_per_client_kb"], "<= 40"),
    ("completion ack p50 ms", lambda r: r["gate"]["ack"]["p50"], ""),
    ("completion ack p99 ms", lambda r: r["gate"]["ack"]["p99"], "<= 20"),
    ("completion failures", lambda r: r["gate"]["failures"], "0"),
    ("TCP reset -> leave, max s", lambda r: _s(r["disconnect"]["reset"]["max"]), "<= grace + 3"),
    ("silent drop -> leave, max s", lambda r: _s(r["disconnect"]["silent"]["max"]), "<= grace + 3"),
]


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    need_peer()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as name:
        tmp = Path(name)
        for index in range(args.runs):
            result = await one_run(args, tmp, index)
            runs.append(result)
            print(
                f"run {index + 1}: "
                + ", ".join(f"{label}={_fmt(get(result))}" for label, get, _ in FIGURES),
                flush=True,
            )
    summary = {label: median([get(r) for r in runs]) for label, get, _ in FIGURES}
    return {
        "runs": runs,
        "median": summary,
        "grace_s": args.grace,
        "plain": args.plain,
        "database": args.database,
        "ping": [args.ping_interval, args.ping_timeout],
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--plain", action="store_true", help="CLASSROOM_SIGNALING_FAST=false")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--ping-interval", type=float, help="CLASSROOM_PING_INTERVAL (s)")
    parser.add_argument("--ping-timeout", type=float, help="CLASSROOM_PING_TIMEOUT (s)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "CLASSROOM_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin connection to a PostgreSQL server (--database postgresql)",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server into DIR")
    parser.add_argument("--profile-phase", choices=sorted(PHASES), default="storm")
    args = parser.parse_args()
    data = asyncio.run(run(args))
    rows = [[label, data["median"][label], target] for label, _, target in FIGURES]
    print()
    print(
        table(
            f"classroom: medians of {args.runs} runs ({args.database}, grace {args.grace} s)",
            ["figure", "median", "target"],
            rows,
        )
    )
    spread = [r["join_storm"]["total_ms"] for r in data["runs"]]
    if len(spread) > 1:
        print(
            f"join storm total ms across runs: {[round(s) for s in spread]}, "
            f"stdev {statistics.stdev(spread):.0f}"
        )
    print(f"\nwrote {write_result('classroom', data)}")


if __name__ == "__main__":
    main()
