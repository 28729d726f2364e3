"""Emails built and rendered away from the event loop, in a helper process.

Building an email with the standard library's ``email`` package and rendering it to bytes costs
about 2 ms of CPU, all of it holding the interpreter lock: on the event loop (or in a thread of
its process) that is 2 ms during which no classroom request is answered, once per email. With
``CLASSROOM_MAIL_RENDER_PROCESSES`` = N > 0 (default 1) the emails are rendered by N helper
processes (``spawn``: nothing of the server's state is inherited), started by a thread (the
loop is not held while they start): ``classroom serve`` starts them before it listens (a helper
imports the application again: a second of CPU that would otherwise compete with the first
emails' requests); an application embedded elsewhere starts them at its first email. 0 renders
them on the loop.

A helper that dies (killed, out of memory) fails the renders in flight with a retryable error
(the outbox tries them again later) and is replaced at the next email. A helper whose server was
killed exits by itself within a second. Helpers that cannot start at all (the program was
started in a way ``spawn`` cannot repeat, such as from standard input, or they did not answer
within a minute) are given up with a warning: emails are then rendered on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from classroom.notify.mail import Rendered, render

log = logging.getLogger(__name__)


class RendererUnavailable(Exception):
    """The helper process died while rendering; the email is tried again later."""


def _ready() -> bool:
    return True


PARENT_CHECK_SECONDS = 1.0


def _follow_parent(parent: int) -> None:
    """In a helper: exit once the server that started it is gone (killed, so it could not stop
    its helpers), instead of waiting for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


class MailRenderer:
    """``await render(...)``: in a helper process (``processes`` > 0) or on the loop (0)."""

    START_TIMEOUT = 60.0

    def __init__(self, processes: int = 1) -> None:
        if processes < 0:
            raise ValueError("processes must be 0 or more")
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._starting: asyncio.Future[ProcessPoolExecutor] | None = None
        self._closed = False

    async def render(
        self, message_id: str, payload: dict[str, Any], mail_from: str, created_at: datetime
    ) -> Rendered:
        if self.processes == 0:
            return render(message_id, payload, mail_from, created_at)
        if self._closed:
            raise RendererUnavailable("the mail renderer is closed")
        pool = self._pool or await self._started()
        if pool is None:  # the helpers cannot start here: rendered on the loop from now on
            return render(message_id, payload, mail_from, created_at)
        try:
            return await asyncio.wrap_future(
                pool.submit(render, message_id, payload, mail_from, created_at)
            )
        except BrokenProcessPool as exc:
            if self._pool is pool:
                self._pool = None
                log.warning("mail renderer: a helper process died (%s); replacing it", exc)
                pool.shutdown(wait=False, cancel_futures=True)
            raise RendererUnavailable(f"the rendering process died: {exc}") from exc

    async def ready(self) -> None:
        """Start the helpers now, rather than at the first email, and wait until they answer
        (or were given up: the module doc)."""
        if self.processes and not self._closed:
            await self._started()

    async def _started(self) -> ProcessPoolExecutor | None:
        """The helpers, started once by a thread for every caller waiting meanwhile."""
        if self._pool is not None:
            return self._pool
        if self._starting is None:
            self._starting = asyncio.ensure_future(asyncio.to_thread(self._start))
        starting = self._starting
        try:
            pool = await asyncio.shield(starting)
        except (BrokenProcessPool, TimeoutError, OSError) as exc:
            if self.processes:
                self.processes = 0
                log.warning(
                    "mail renderer: the helper process could not start (%s); emails are "
                    "rendered on the event loop",
                    exc,
                )
            return None
        finally:
            if self._starting is starting and starting.done():
                self._starting = None
        if self._closed:  # close() stops it
            raise RendererUnavailable("the mail renderer is closed")
        self._pool = pool
        return pool

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_follow_parent,
            initargs=(os.getpid(),),
        )
        try:
            pool.submit(_ready).result(timeout=self.START_TIMEOUT)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        log.info("mail renderer: %d helper process(es) started", self.processes)
        return pool

    async def close(self) -> None:
        """Stop the helpers (renders not started are cancelled). Idempotent."""
        self._closed = True
        pools = {self._pool} if self._pool is not None else set()
        self._pool = None
        if self._starting is not None:
            with contextlib.suppress(Exception):
                pools.add(await asyncio.shield(self._starting))
        for pool in pools:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
