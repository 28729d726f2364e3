"""Log lines are rendered on a thread of their own: in order, with their arguments as they were
when logged, their tracebacks, and the time they were logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from classroom.logs import configure_logging, stop_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_rendered_off_the_callers_thread(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("classroom.test")
    changing = {"n": 1}
    log.info("first session=%s state=%s", "s-1", changing)
    changing["n"] = 2  # changed after the call: the line says what it was
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("second failed session=%s", "s-2")
    log.debug("not shown at INFO")
    for i in range(50):
        log.warning("line %d", i)
    stop_logging()  # everything queued is written
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "first session=s-1 state={'n': 1}"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "classroom.test"
    assert lines[1]["event"] == "second failed session=s-2"
    assert "ValueError: boom" in lines[1]["exception"]
    assert [line["event"] for line in lines[2:]] == [f"line {i}" for i in range(50)]
    stamps = [datetime.fromisoformat(line["timestamp"]) for line in lines]
    assert stamps == sorted(stamps) and all(s.utcoffset() is not None for s in stamps)
