"""The command line as a newcomer uses it: real processes, real ports."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from classroom.auth import TokenCodec
from classroom.db.engine import Database
from classroom.db.migrate import upgrade
from classroom.db.tables import Base
from tests.support import wait_until

CLI = [sys.executable, "-m", "classroom"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    return subprocess.run(
        [*CLI, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bad_database_url_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        env={"CLASSROOM_JWT_SECRET": "s", "CLASSROOM_DATABASE_URL": "mysql://root@localhost/x"},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CLASSROOM_DATABASE_URL" in lines[0]


def test_unreachable_database_stops_serve_with_one_line() -> None:
    result = run_cli(
        "serve",
        env={
            "CLASSROOM_JWT_SECRET": "s",
            "CLASSROOM_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        },
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not usable" in lines[0]


def test_missing_secret_stops_serve() -> None:
    result = run_cli("serve")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "classroom: configuration error: CLASSROOM_JWT_SECRET: required "
        "(or run `classroom serve --demo`)"
    ]


def test_token_command_prints_a_valid_token() -> None:
    secret = "cli-secret-" + "q" * 32
    result = run_cli(
        "token",
        "--sub",
        "p1",
        "--role",
        "parent",
        "--name",
        "Pat",
        "--child",
        "s1",
        "--ttl",
        "60",
        env={"CLASSROOM_JWT_SECRET": secret},
    )
    assert result.returncode == 0, result.stderr
    identity = TokenCodec(secret).decode(result.stdout.strip())
    assert (identity.user_id, identity.role, identity.children) == ("p1", "parent", ("s1",))


async def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(timeout):
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)


async def test_demo_serves_links_and_shuts_down_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    env["CLASSROOM_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    proc = subprocess.Popen(
        [*CLI, "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
        helpers = _children(proc.pid)  # the email helper started before the server listened
        assert helpers
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "mail renderer: 1 helper process(es) started" in err
    # stopped with the server (the resource tracker of multiprocessing once its pipe closes)
    await wait_until(lambda: not any(_running(pid) for pid in helpers), timeout=10)
    assert "tutor:   http://127.0.0.1:" in out
    assert "student: http://127.0.0.1:" in out
    assert "?token=" in out
    assert "CLASSROOM_JWT_SECRET=" in out


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        await upgrade(database_url)
    db = Database(database_url)  # PostgreSQL: the session database was migrated
    try:
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_diff)
    finally:
        await db.close()
    assert differences == []


@pytest.mark.postgres
def test_migrate_command_on_postgresql(pg_database: str) -> None:
    result = run_cli("migrate", env={"CLASSROOM_DATABASE_URL": pg_database})
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
