"""A real classroom server on 127.0.0.1 and Debian's Chromium (fake camera and microphone).

The server is ``create_app`` on an aiohttp ``TestServer`` in the test's event loop, with a fresh
SQLite database; the browser is driven through Playwright's async API in the same loop. Pages on
http://127.0.0.1 are secure contexts, so getUserMedia works.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_async
import pytest
from aiohttp.test_utils import TestServer

from classroom.app import create_app
from classroom.auth import Identity, TokenCodec
from classroom.db.engine import Database
from classroom.db.tables import Base, TutorProfile
from classroom.users.directory import upsert_user
from tests.conftest import JWT_SECRET, make_settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-gpu",
]

TUTOR = Identity("tutor-e2e", "tutor", "Tina Tutor", "tina@example.test")
STUDENT = Identity("student-e2e", "student", "Sam Student", "sam@example.test")
RATE_CENTS = 4000  # per hour: 45 minutes bill $30.00


@dataclass
class Server:
    url: str
    db: Database
    tokens: TokenCodec

    def link(self, who: Identity, fragment: str) -> str:
        token = self.tokens.encode(who.user_id, who.role, who.name, who.email, who.children)
        return f"{self.url}/?token={token}#{fragment}"

    async def set_rate(self, tutor: Identity, cents: int) -> None:
        async with self.db.transaction() as tx:
            await upsert_user(tx, tutor)
            tx.add(
                TutorProfile(
                    tutor_id=tutor.user_id, hourly_rate_cents=cents, timezone="UTC", availability=[]
                )
            )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    settings = make_settings(url, media_loopback=True, log_level="WARNING")
    test_server = TestServer(create_app(settings), host="127.0.0.1")
    await test_server.start_server()
    try:
        yield Server(str(test_server.make_url("")).rstrip("/"), db, TokenCodec(JWT_SECRET))
    finally:
        await test_server.close()
        await db.close()


@dataclass
class PageLog:
    """Console errors and uncaught exceptions of one page; a normal flow has none."""

    name: str
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                self.problems.append(f"{self.name} console: {message.text}")

        def on_error(error: Any) -> None:
            self.problems.append(f"{self.name} pageerror: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)


class Browser:
    """One Chromium; each person gets their own context (own storage, own camera)."""

    def __init__(self, browser: Any, test_name: str) -> None:
        self._browser = browser
        self._contexts: list[Any] = []
        self.logs: list[PageLog] = []
        self.shots = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.shots.mkdir(parents=True, exist_ok=True)
        self._count = 0

    async def page(self, name: str, url: str) -> Any:
        context = await self._browser.new_context(
            viewport={"width": 1280, "height": 820}, permissions=["camera", "microphone"]
        )
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = await context.new_page()
        log = PageLog(name)
        log.attach(page)
        self.logs.append(log)
        await page.goto(url)
        return page

    async def screenshot(self, page: Any, label: str) -> None:
        self._count += 1
        await page.screenshot(
            path=str(self.shots / f"{self._count:02d}-{label}.png"), full_page=True
        )

    def problems(self) -> list[str]:
        return [problem for log in self.logs for problem in log.problems]

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run scripts/setup.sh --browser")
    async with playwright_async.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        wrapper = Browser(chromium, request.node.name)
        try:
            yield wrapper
        finally:
            await wrapper.close()
            await chromium.close()
