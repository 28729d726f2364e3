"""Shared fixtures: databases (SQLite and a real PostgreSQL), settings, tokens, servers, clients."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from classroom.app import create_app
from classroom.auth import Identity, TokenCodec
from classroom.config import Settings
from classroom.db.engine import Database
from classroom.db.migrate import upgrade
from classroom.db.tables import Base
from tests.support import Client, Connect

JWT_SECRET = "test-secret-" + "x" * 32
PG_ADMIN_DSN = os.environ.get(
    "CLASSROOM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One fresh PostgreSQL database for the test run, migrated with the real migrations."""
    name = f"classroom_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(drop())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database test runs on both SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'classroom.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    if database.dialect == "sqlite":
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    else:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
    await database.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "log_level": "WARNING",
        "sweep_interval_seconds": 3600,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def tokens() -> TokenCodec:
    return TokenCodec(JWT_SECRET)


class People:
    """Identities and tokens for the usual cast."""

    def __init__(self, tokens: TokenCodec) -> None:
        self._tokens = tokens
        self.tutor = Identity("tutor-1", "tutor", "Tina Tutor", "tina@example.test")
        self.tutor2 = Identity("tutor-2", "tutor", "Theo Tutor", "theo@example.test")
        self.student = Identity("student-1", "student", "Sara Student", "sara@example.test")
        self.student2 = Identity("student-2", "student", "Sid Student", "sid@example.test")
        self.parent = Identity(
            "parent-1", "parent", "Paula Parent", "paula@example.test", ("student-1",)
        )
        self.admin = Identity("admin-1", "admin", "Ada Admin", "ada@example.test")

    def token(self, who: Identity, ttl: int = 3600) -> str:
        return self._tokens.encode(
            who.user_id, who.role, who.name, who.email, who.children, ttl_seconds=ttl
        )

    def headers(self, who: Identity) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(who)}"}


@pytest.fixture
def people(tokens: TokenCodec) -> People:
    return People(tokens)


AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(
    db: Database, database_url: str, aiohttp_client: Any, tmp_path: Path
) -> AppFactory:
    """Start a real server on 127.0.0.1 for the app built from settings; return its HTTP client."""

    async def factory(**overrides: Any) -> TestClient[Any, Any]:
        url = overrides.pop("database_url", database_url)
        overrides.setdefault("mail_dir", str(tmp_path / "mail"))
        app = create_app(make_settings(url, **overrides))
        client: TestClient[Any, Any] = await aiohttp_client(TestServer(app, host="127.0.0.1"))
        return client

    return factory


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture
async def server(make_client: AppFactory) -> TestClient[Any, Any]:
    """The server the ``connect`` fixture's clients use; modules override it with settings."""
    return await make_client()


@pytest.fixture
async def connect(server: TestClient[Any, Any], people: People) -> AsyncIterator[Connect]:
    """Real Socket.IO clients on ``server``'s ``/classroom``, all closed after the test."""
    clients: list[Client] = []
    url = str(server.make_url("/"))

    async def factory(who: Identity) -> Client:
        client = Client(who.user_id)
        clients.append(client)
        return await client.connect(url, people.token(who))

    yield factory
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
