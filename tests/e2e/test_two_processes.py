"""Two `classroom serve` processes on one PostgreSQL and one Redis, a browser page on each.

The classroom's audio and video live on one process (its media home); the page that lands on the
other one is refused `wrong_node`, follows the URL it names, and both people see each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from classroom.auth import TokenCodec
from classroom.db.engine import Database
from tests.cluster_support import Deployment, free_port, fresh_database
from tests.conftest import JWT_SECRET
from tests.e2e.conftest import STUDENT, TUTOR, Browser, playwright_async
from tests.e2e.test_classroom_flow import sees_video_of
from tests.support import seed_session

expect = playwright_async.expect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with fresh_database() as url:
        ports = [free_port(), free_port()]
        origins = ",".join(f"http://127.0.0.1:{port}" for port in ports)
        cluster = Deployment(
            url,
            tmp_path,
            {"CLASSROOM_MEDIA_LOOPBACK": "true", "CLASSROOM_ALLOWED_ORIGINS": origins},
        )
        try:
            for name, port in zip(("one", "two"), ports, strict=True):
                cluster.start(name, port=port)
            cluster.wait_ready()
            yield cluster
        finally:
            cluster.close()


def link(base: str, who: Any, fragment: str) -> str:
    token = TokenCodec(JWT_SECRET).encode(who.user_id, who.role, who.name, who.email)
    return f"{base}/?token={token}#{fragment}"


async def test_pages_on_two_processes_meet_on_the_classrooms_home(
    deployment: Deployment, browser: Browser
) -> None:
    db = Database(deployment.database_url)
    try:
        session_id = await seed_session(db, TUTOR, [STUDENT])
    finally:
        await db.close()
    one, two = deployment.processes
    fragment = f"/sessions/{session_id}"
    student = await browser.page("student", link(one.url, STUDENT, fragment))
    tutor = await browser.page("tutor", link(two.url, TUTOR, fragment))
    for page in (tutor, student):
        await expect(page.get_by_role("heading", level=1)).to_have_text("Quadratic equations")

    # The student's join makes process one the classroom's home.
    await student.get_by_role("button", name="Join online classroom").click()
    await expect(student.get_by_role("button", name="Leave call")).to_be_visible()
    # The tutor's page is on process two: refused wrong_node, it moves to one and joins there.
    await tutor.get_by_role("button", name="Start session").click()
    await expect(tutor.get_by_role("button", name="Leave")).to_be_visible()
    await sees_video_of(tutor, STUDENT.user_id)
    await sees_video_of(student, TUTOR.user_id)
    await browser.screenshot(tutor, "tutor-on-the-other-process")
    # Process two did refuse the tutor's join and point at one (its log says so).
    refusals = [line for line in two.log_path.read_text().splitlines() if "code=wrong_node" in line]
    assert refusals, two.log_tail()
    assert browser.problems() == []
