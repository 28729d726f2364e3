"""Emails rendered in a helper process: the same bytes as on the loop, the helper started at the
first email (or ahead, when asked) and stopped at close, a dead helper replaced, helpers that
cannot start left for the loop, a killed server's helper gone, a bad payload a permanent
failure."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from classroom.db.tables import utcnow
from classroom.notify.delivery import Channels, Claimed
from classroom.notify.errors import PermanentDeliveryError
from classroom.notify.mail import FolderTransport, render
from classroom.notify.outbox import EMAIL
from classroom.notify.rendering import MailRenderer, RendererUnavailable
from tests.support import wait_until

MAIL_FROM = "Classroom <classroom@example.test>"


def a_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "to": "zoe@example.test",
        "to_name": "Zoë Ünïcode",
        "subject": "Session recap: Algèbre",
        "text": "Covered — everything\n",
        "html": "<p>Covered — everything</p>",
        "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "ics_method": "REQUEST",
    }
    return payload | changes


def _same(data: bytes) -> bytes:
    return re.sub(rb"={15}\d+==", b"<boundary>", data)


def helpers() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


async def test_the_helper_renders_what_the_loop_would() -> None:
    before = helpers()
    renderer = MailRenderer(processes=1)
    created = utcnow()
    try:
        assert helpers() == before  # nothing started before the first email
        rendered = await asyncio.wait_for(
            renderer.render("m-1", a_payload(), MAIL_FROM, created), timeout=30
        )
        started = helpers() - before
        assert len(started) == 1 and os.getpid() not in started
        assert _same(rendered.data) == _same(render("m-1", a_payload(), MAIL_FROM, created).data)
        again = await asyncio.wait_for(
            renderer.render("m-2", a_payload(), MAIL_FROM, created), timeout=30
        )
        assert b"Message-ID: <m-2@classroom>" in again.data
        assert helpers() - before == started  # the same helper, kept
    finally:
        await asyncio.wait_for(renderer.close(), timeout=30)
    assert not helpers() - before
    with pytest.raises(RendererUnavailable):
        await renderer.render("m-3", a_payload(), MAIL_FROM, created)


async def test_started_ahead_the_helper_is_up_before_the_first_email() -> None:
    before = helpers()
    renderer = MailRenderer(processes=1)
    try:
        await asyncio.wait_for(asyncio.gather(renderer.ready(), renderer.ready()), timeout=30)
        started = helpers() - before
        assert len(started) == 1  # started once, for both
        rendered = await asyncio.wait_for(
            renderer.render("m-1", a_payload(), MAIL_FROM, utcnow()), timeout=30
        )
        assert b"Message-ID: <m-1@classroom>" in rendered.data
        assert helpers() - before == started
    finally:
        await asyncio.wait_for(renderer.close(), timeout=30)
    assert not helpers() - before


async def test_a_dead_helper_fails_its_email_for_a_retry_and_is_replaced() -> None:
    before = helpers()
    renderer = MailRenderer(processes=1)
    created = utcnow()
    try:
        await asyncio.wait_for(renderer.render("m-1", a_payload(), MAIL_FROM, created), 30)
        [pid] = helpers() - before
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: pid not in helpers(), timeout=10)
        with pytest.raises(RendererUnavailable):
            await asyncio.wait_for(renderer.render("m-2", a_payload(), MAIL_FROM, created), 30)
        rendered = await asyncio.wait_for(
            renderer.render("m-3", a_payload(), MAIL_FROM, created), timeout=30
        )
        assert b"Message-ID: <m-3@classroom>" in rendered.data
        assert pid not in helpers() and len(helpers() - before) == 1
    finally:
        await asyncio.wait_for(renderer.close(), timeout=30)


async def test_helpers_that_cannot_start_leave_the_rendering_to_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # spawn runs the program's main file again in the helper: one that is gone cannot start
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "/nonexistent/program.py")
    renderer = MailRenderer(processes=1)
    created = utcnow()
    try:
        first, second = await asyncio.wait_for(
            asyncio.gather(
                renderer.render("m-1", a_payload(), MAIL_FROM, created),
                renderer.render("m-2", a_payload(), MAIL_FROM, created),
            ),
            timeout=60,
        )
    finally:
        await asyncio.wait_for(renderer.close(), timeout=30)
    assert _same(first.data) == _same(render("m-1", a_payload(), MAIL_FROM, created).data)
    assert b"Message-ID: <m-2@classroom>" in second.data
    assert renderer.processes == 0
    assert sum("could not start" in r.message for r in caplog.records) == 1


async def test_helpers_that_do_not_answer_in_time_leave_the_rendering_to_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = helpers()
    monkeypatch.setattr(MailRenderer, "START_TIMEOUT", 0.001)  # no helper starts that fast
    renderer = MailRenderer(processes=1)
    created = utcnow()
    try:
        await asyncio.wait_for(renderer.ready(), timeout=30)
        assert renderer.processes == 0
        rendered = await renderer.render("m-1", a_payload(), MAIL_FROM, created)
    finally:
        await asyncio.wait_for(renderer.close(), timeout=30)
    assert _same(rendered.data) == _same(render("m-1", a_payload(), MAIL_FROM, created).data)
    assert sum("could not start" in r.message for r in caplog.records) == 1
    await wait_until(lambda: not helpers() - before, timeout=30)  # the slow one stopped too


PROGRAM = """
import asyncio, multiprocessing, sys
from datetime import UTC, datetime
from classroom.notify.rendering import MailRenderer

async def main():
    renderer = MailRenderer(processes=1)
    payload = {"to": "x@example.test", "subject": "s", "text": "t", "html": "<p>t</p>"}
    await renderer.render("m-1", payload, "C <c@example.test>", datetime.now(UTC))
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    await asyncio.Event().wait()  # until killed

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_helpers_of_a_killed_server_exit_by_themselves(tmp_path: Any) -> None:
    program = tmp_path / "server.py"
    program.write_text(PROGRAM)
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(program), stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), timeout=60)
        children = [int(pid) for pid in line.split()]
        assert children
    finally:
        server.kill()  # no chance to stop its helpers
        await server.wait()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    await wait_until(lambda: all(gone(pid) for pid in children), timeout=15)


def claimed(payload: dict[str, Any], created: datetime) -> Claimed:
    return Claimed("m-1", EMAIL, "recap", payload["to"], None, None, payload, 1, created, "t")


async def test_delivery_through_the_helper_writes_the_email(tmp_path: Any) -> None:
    folder = FolderTransport(tmp_path / "mail")
    channels = Channels(folder, MAIL_FROM, renderer=MailRenderer(processes=1))
    created = utcnow()
    try:
        await asyncio.wait_for(channels.deliver(claimed(a_payload(), created)), timeout=30)
        with pytest.raises(PermanentDeliveryError, match="cannot build the email"):
            broken = claimed(a_payload(), created)
            del broken.payload["subject"]
            await asyncio.wait_for(channels.deliver(broken), timeout=30)
    finally:
        await asyncio.wait_for(channels.close(), timeout=30)
    data = folder.path_for("m-1", created).read_bytes()
    assert _same(data) == _same(render("m-1", a_payload(), MAIL_FROM, created).data)
