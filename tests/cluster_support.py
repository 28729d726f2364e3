"""Real ``classroom serve`` processes for the multi-process tests: a fresh PostgreSQL database
migrated with ``classroom migrate``, one Redis key prefix per deployment, free 127.0.0.1 ports,
bounded start-up, and every process killed at the end whatever happened."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from tests.conftest import JWT_SECRET, PG_ADMIN_DSN, REDIS_URL

CLI = [sys.executable, "-m", "classroom"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database brought up to date by ``classroom migrate``; dropped after."""
    name = f"classroom_multinode_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        done = subprocess.run(
            [*CLI, "migrate"],
            env={**_base_env(), "CLASSROOM_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class ServerProcess:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} ({self.url}) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Deployment:
    """Processes of one deployment: one database, one Redis prefix."""

    database_url: str
    workdir: Path
    settings: dict[str, str]
    prefix: str = field(default_factory=lambda: f"classroom-multinode-{uuid.uuid4().hex[:10]}:")
    processes: list[ServerProcess] = field(default_factory=list)

    def start(self, name: str, port: int | None = None, **settings: str) -> ServerProcess:
        port = port or free_port()
        env = {
            **_base_env(),
            "CLASSROOM_JWT_SECRET": JWT_SECRET,
            "CLASSROOM_DATABASE_URL": self.database_url,
            "CLASSROOM_REDIS_URL": REDIS_URL,
            "CLASSROOM_REDIS_PREFIX": self.prefix,
            "CLASSROOM_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CLASSROOM_MAIL_DIR": str(self.workdir / "mail"),
            "CLASSROOM_LOG_LEVEL": "INFO",
            **self.settings,
            **settings,
        }
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [*CLI, "serve", "--port", str(port)],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = ServerProcess(name, port, popen, log_path)
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 60) -> None:
        """Every process answers ``/readyz`` 200 (database, Redis, fan-out listening)."""
        deadline = time.monotonic() + timeout
        waiting = [p for p in self.processes if p.alive()]
        while waiting:
            for process in list(waiting):
                assert process.alive(), process.log_tail()
                try:
                    with urllib.request.urlopen(f"{process.url}/readyz", timeout=2) as response:
                        if response.status == 200:
                            waiting.remove(process)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            if waiting:
                assert time.monotonic() < deadline, "\n".join(p.log_tail() for p in waiting)
                time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(p.log_tail() for p in self.processes)

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 5 s) and delete the prefix's keys."""
        for process in self.processes:
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
