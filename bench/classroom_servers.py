"""The servers of the classroom benchmark (``bench/classroom.py``): a fresh database per run and
its sessions, one `classroom serve` process or two sharing PostgreSQL and a Redis key prefix of
their own, their readiness, CPU and RSS summed over the processes at the load client's marks,
their logs, and py-spy for one phase.

Two processes: each gets its own port and ``CLASSROOM_PUBLIC_URL``, the same database, Redis and
``CLASSROOM_REDIS_PREFIX`` (``classroom-bench-<random>:``, its keys deleted after the run), and
``CLASSROOM_MEDIA_ENABLED=false`` — with media a classroom's joins must go to its media home and a
join elsewhere is refused ``wrong_node``; without it a join lands anywhere, so the load client can
put each session's tutor on one process and its student on the other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    Process,
    cpu_seconds,
    drive_load,
    free_port,
    rss_bytes,
    settle,
    spawn,
    wait_ready,
)
from classroom.auth import Identity, TokenCodec
from classroom.db.engine import Database
from classroom.db.migrate import upgrade
from tests.support import seed_session

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


REDIS_SCAN_LIMIT = 10_000  # SCAN calls when deleting a run's keys (1000 keys each)


@dataclass
class Server:
    process: Process
    port: int
    url: str
    log: Path

    def reading(self) -> tuple[float, int]:
        """(CPU seconds, RSS bytes) now; a clear error if the process is gone."""
        try:
            return cpu_seconds(self.process.pid), rss_bytes(self.process.pid)
        except (FileNotFoundError, ProcessLookupError):
            raise RuntimeError(self.death()) from None

    def death(self) -> str:
        code = self.process.proc.returncode
        tail = log_tail(self.log)
        return f"server on port {self.port} exited (code {code}); its log ends:\n{tail}"


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace, tmp: Path, index: int) -> AsyncIterator[str]:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database created on the
    server of ``--pg-dsn`` (dropped afterwards); migrated by the seeding."""
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


@contextlib.asynccontextmanager
async def redis_prefix(url: str) -> AsyncIterator[str]:
    """A key prefix no other run uses on the Redis at ``url``; its keys are deleted afterwards."""
    from redis.asyncio import Redis

    prefix = f"classroom-bench-{uuid.uuid4().hex[:10]}:"
    client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        try:
            await client.ping()
        except Exception as exc:
            raise RuntimeError(f"Redis at {url} is not reachable: {exc}") from None
        try:
            yield prefix
        finally:
            await delete_keys(client, prefix)
    finally:
        await client.aclose()


async def delete_keys(client: Any, prefix: str) -> int:
    deleted = 0
    cursor = 0
    for _ in range(REDIS_SCAN_LIMIT):
        cursor, keys = await client.scan(cursor, match=f"{prefix}*", count=1000)
        if keys:
            deleted += await client.delete(*keys)
        if cursor == 0:
            break
    return deleted


@contextlib.asynccontextmanager
async def servers(
    env: dict[str, str], count: int, logs: Path, redis: tuple[str, str] | None
) -> AsyncIterator[list[Server]]:
    """``count`` `classroom serve` processes on 127.0.0.1 with ``env`` (plus, with ``redis`` =
    (url, prefix), Redis, the prefix and a public URL each), ready (``GET /readyz`` 200) before
    they are yielded; every one killed (its process group) on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        started: list[Server] = []
        for k in range(count):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            own = dict(env)
            if redis is not None:
                own |= {
                    "CLASSROOM_REDIS_URL": redis[0],
                    "CLASSROOM_REDIS_PREFIX": redis[1],
                    "CLASSROOM_PUBLIC_URL": url,
                    "CLASSROOM_MEDIA_ENABLED": "false",
                }
            argv = [str(ROOT / ".venv/bin/classroom"), "serve"]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            log = logs / f"server{k}.log"
            process = await stack.enter_async_context(
                spawn(f"classroom-{k}", argv, env=own, stderr_to=log)
            )
            started.append(Server(process, port, url, log))
        for server in started:
            try:
                await wait_ready(server.url, timeout=60)
            except TimeoutError:
                if server.process.proc.returncode is not None:
                    raise RuntimeError(server.death()) from None
                raise
        yield started
        # The load is over: let the servers finish what its last disconnects started before
        # they are stopped (a stop in the middle of it logs failed presence updates).
        with contextlib.suppress(OSError):
            await settle([s.process.pid for s in started], max_s=10)


def dead_servers(started: list[Server]) -> RuntimeError | None:
    """What went wrong when the load failed: the servers that exited, with their logs' ends."""
    dead = [s.death() for s in started if s.process.proc.returncode is not None]
    return RuntimeError("\n".join(dead)) if dead else None


async def drive_servers(
    started: list[Server],
    config: dict[str, Any],
    out: Path,
    marks: Marks,
    *,
    timeout: float,
    stderr_to: Path,
) -> dict[str, Any]:
    """``drive_load`` against ``started``; a server that died meanwhile is the error raised (its
    log's end), whether the load failed or not: figures from a dead server mean nothing."""
    try:
        result = await drive_load(config, out, marks, timeout=timeout, stderr_to=stderr_to)
    except Exception as exc:
        dead = dead_servers(started)
        if dead is not None:
            raise dead from exc
        raise
    dead = dead_servers(started)
    if dead is not None:
        raise dead
    return result


def log_tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


_LEVEL = re.compile(r"\[(warning|error|critical)\s*\]\s*(.*)")
_IDS = re.compile(r"=[^\s\]]+")


def scan_log(path: Path, top: int = 8) -> dict[str, Any]:
    """Warnings, errors and tracebacks in a server's log, the most frequent messages first
    (values after ``=`` blanked so that one message with different ids counts once)."""
    counts: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    tracebacks = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                tracebacks += 1
            match = _LEVEL.search(line)
            if match:
                levels[match.group(1)] += 1
                counts[f"{match.group(1)}: {_IDS.sub('=…', match.group(2))[:160]}"] += 1
    return {
        "log": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "warnings": levels["warning"],
        "errors": levels["error"] + levels["critical"],
        "tracebacks": tracebacks,
        "top": [[n, message] for message, n in counts.most_common(top)],
    }


class Profiler:
    """py-spy attached to one server for one phase (between two of the load client's marks):
    the thread holding the GIL, 100 samples/s, collapsed stacks in ``out``."""

    def __init__(self, phase: tuple[str, str] | None, pid: int, out: Path) -> None:
        self.phase = phase
        self.out = out
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None

    def at_mark(self, name: str) -> None:
        """Called after the servers settled at a mark: the phase starts here."""
        if self.phase is not None and name == self.phase[0]:
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

    def before_settle(self, name: str) -> None:
        """Called at a mark before the servers settle: the phase ends here."""
        if self.phase is not None and name == self.phase[1]:
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


class Marks:
    """The orchestrator's side of the load client's marks: CPU and RSS summed over the server
    processes at each mark (``at``); then, before the load client goes on, wait (bounded) until
    the servers are idle and read again (``settled``): what the phase before left queued is
    done before the next phase starts."""

    def __init__(self, started: list[Server], profilers: list[Profiler], settle_max: float):
        self.started = started
        self.profilers = profilers
        self.settle_max = settle_max
        self.at: dict[str, dict[str, Any]] = {}
        self.settled: dict[str, dict[str, Any]] = {}

    def read(self) -> dict[str, Any]:
        readings = [s.reading() for s in self.started]
        return {
            "cpu_s": sum(cpu for cpu, _ in readings),
            "rss": sum(rss for _, rss in readings),
            "rss_each": [rss for _, rss in readings],
        }

    async def __call__(self, name: str) -> None:
        self.at[name] = self.read()
        for profiler in self.profilers:
            profiler.before_settle(name)
        pids = [s.process.pid for s in self.started]
        waited = await settle(pids, max_s=self.settle_max, quiet_cores=0.2 * len(pids))
        self.settled[name] = {**self.read(), **waited}
        for profiler in self.profilers:
            profiler.at_mark(name)
