"""Logging: stdlib ``logging`` everywhere, rendered as console lines (the stdlib's formatter) or
JSON (structlog).

Writing a line to stderr as it is logged costs a system call per line on the event loop's thread
(a completion logs five), and handing each line to a thread of its own costs worse on a busy
machine: the thread wakes for every line and takes the interpreter lock from the loop in the
middle of its work. So a line logged on the event loop's thread is kept (its message merged with
its arguments, its traceback, the time it was logged) and the lines kept are rendered and written
together, in one write, FLUSH_AFTER seconds after the first of them, between two of the loop's
callbacks. A warning or worse is written at once with what is kept before it; so is a line
logged on any other thread or outside a running loop. ``stop_logging`` (also run at exit) writes
what is still kept.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

FLUSH_AFTER = 0.05  # seconds

_handler: _BatchHandler | None = None


class _BatchHandler(logging.Handler):
    """Keeps the event loop's lines and writes them together (the module doc)."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._stream = stream
        self._kept: list[logging.LogRecord] = []
        self._guard = threading.Lock()
        self._scheduled: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where _scheduled runs

    def emit(self, record: logging.LogRecord) -> None:
        # the message as it is now: the arguments may change before the line is rendered
        record.msg = record.getMessage()
        record.args = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._guard:
            if self._scheduled is not None and loop is not self._loop:
                self._write_kept()  # kept on a loop that is no longer running here
            self._kept.append(record)
            if loop is None or record.levelno >= logging.WARNING:
                self._write_kept()
            elif self._scheduled is None:
                self._scheduled = loop.call_later(FLUSH_AFTER, self.flush)
                self._loop = loop

    def flush(self) -> None:
        with self._guard:
            self._write_kept()

    def _write_kept(self) -> None:
        """Called with the guard held."""
        # a flush still scheduled runs anyway and finds little or nothing (cancelling it from
        # another thread would not be safe)
        self._scheduled = self._loop = None
        kept, self._kept = self._kept, []
        if not kept:
            return
        lines: list[str] = []
        for record in kept:
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except Exception:
            self.handleError(kept[-1])

    def close(self) -> None:
        self.flush()
        super().close()


class _ConsoleFormatter(logging.Formatter):
    """The console line: ``<time> [<level>] <message> [<logger>]``, the time the record was made
    in ISO 8601 UTC, the level padded to 9, then the traceback, if any, on the lines below (the
    layout of structlog's console renderer without colours). The standard formatter renders it in
    a quarter of the time (4 µs a line against 17 µs): the start of the hour logs a line or two
    per join."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_iso(record.created)} [{record.levelname.lower():<9}] {record.getMessage()}"
            f" [{record.name}]"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")


def _timestamp(_logger: Any, _name: str, event_dict: Any) -> Any:
    """The time the record was made (not when the thread renders it), ISO 8601 in UTC."""
    record = event_dict.get("_record")
    created = record.created if record is not None else datetime.now(UTC).timestamp()
    event_dict["timestamp"] = _iso(created)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    global _handler
    stop_logging()
    formatter: logging.Formatter
    if fmt == "json":
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                _timestamp,
                structlog.processors.format_exc_info,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    else:
        formatter = _ConsoleFormatter()
    # What a record would gather and no line shows (the logging HOWTO's "Optimization"): the
    # caller's file and line (a walk up the stack), the thread, the process and the asyncio
    # task. A join logs a line or two; at the start of the hour that is thousands of records.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # 3.12; not in typeshed
    _handler = _BatchHandler(sys.stderr, formatter)
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level)
    # Library chatter stays at WARNING unless we debug.
    for noisy in ("aiohttp.access", "engineio", "socketio", "aioice", "aiortc", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


def stop_logging() -> None:
    """Write every kept line (idempotent); lines logged afterwards are written at once."""
    if _handler is not None:
        _handler.flush()


atexit.register(stop_logging)
