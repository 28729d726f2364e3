"""Log lines logged on the event loop are kept and written together, in one write, after
FLUSH_AFTER or with the next warning: in order, with their arguments as they were when logged,
their tracebacks, and the time they were logged. Lines logged elsewhere are written at once."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from classroom import logs
from classroom.logs import configure_logging, stop_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_in_order_with_their_arguments_as_logged(
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


def test_console_lines_say_time_level_message_and_logger_then_the_traceback(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "console")
    log = logging.getLogger("classroom.test")
    log.info("joined session=%s user=%s", "s-1", "u-1")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed session=%s", "s-2")
    log.warning("careful")
    stop_logging()
    lines = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
    info = r" \[info     \] joined session=s-1 user=u-1 \[classroom.test\]"
    assert re.fullmatch(stamp + info, lines[0])
    assert re.fullmatch(stamp + r" \[error    \] failed session=s-2 \[classroom.test\]", lines[1])
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-2] == "ValueError: boom"
    assert re.fullmatch(stamp + r" \[warning  \] careful \[classroom.test\]", lines[-1])
    made = datetime.fromisoformat(lines[0].split(" ", 1)[0])
    assert made.utcoffset() == timedelta(0)


class Stream:
    """stderr for the handler: each write kept, a waiter woken."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.wrote = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.wrote.set()
        return len(text)

    def flush(self) -> None:
        return None

    def lines(self) -> list[str]:
        return "".join(self.writes).splitlines()


def handler(stream: Stream) -> logging.Logger:
    formatter = logging.Formatter("%(levelname)s %(message)s")
    log = logging.getLogger("classroom.test.batch")
    log.handlers[:] = [logs._BatchHandler(stream, formatter)]  # type: ignore[arg-type]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


async def test_lines_on_the_loop_are_written_together_after_a_moment() -> None:
    stream = Stream()
    log = handler(stream)
    started = asyncio.get_running_loop().time()
    for i in range(3):
        log.info("line %d", i)
    assert stream.writes == []  # kept: nothing written on the caller's time
    async with asyncio.timeout(5):
        await stream.wrote.wait()
    assert asyncio.get_running_loop().time() - started >= logs.FLUSH_AFTER * 0.9
    assert stream.writes == ["INFO line 0\nINFO line 1\nINFO line 2\n"]  # one write


async def test_a_warning_is_written_at_once_after_what_was_kept() -> None:
    stream = Stream()
    log = handler(stream)
    log.info("kept")
    log.warning("now")
    assert stream.lines() == ["INFO kept", "WARNING now"]


async def test_lines_from_another_thread_are_written_at_once_in_order() -> None:
    stream = Stream()
    log = handler(stream)
    log.info("on the loop")
    thread = threading.Thread(target=lambda: log.info("from a thread"))
    thread.start()
    thread.join(5)
    assert stream.lines() == ["INFO on the loop", "INFO from a thread"]


def test_lines_kept_by_a_loop_that_ended_are_written_by_the_next_line() -> None:
    stream = Stream()
    log = handler(stream)

    async def on_a_loop(text: str) -> None:
        log.info(text)

    asyncio.run(on_a_loop("first"))  # its loop closed before the flush came
    assert stream.writes == []
    asyncio.run(on_a_loop("second"))  # another loop: what the first kept is written
    assert stream.lines() == ["INFO first"]
    log.info("outside a loop")
    assert stream.lines() == ["INFO first", "INFO second", "INFO outside a loop"]


def test_records_skip_what_no_line_shows(restore_logging: None) -> None:
    """A record gathers nothing its line does not show: no walk up the stack for the caller's
    file and line, no thread, process or asyncio task name (thousands of records at the start
    of the hour)."""
    configure_logging("INFO", "json")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:

        async def log_in_a_task() -> None:
            logging.getLogger("classroom.test").info("joined session=%s", "s-1")

        asyncio.run(log_in_a_task())
    finally:
        logging.getLogger().removeHandler(keep)
    (record,) = seen
    assert record.pathname == "(unknown file)" and record.lineno == 0  # caller not looked up
    assert record.thread is None and record.process is None
    assert getattr(record, "taskName", None) is None
