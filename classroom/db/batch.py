"""Batched reads: keys asked for at about the same time are read with one query.

``BatchLoader(load).get(key)``: the keys asked for while a read runs go together in the next read
(up to ``max_batch``, each key once). A key asked for while a read of it is already running waits
for the next read, never for the running one: what a caller gets was read after it asked, as if
it had read alone. ``load(keys)`` returns what it found by key; a key it did not find is ``None``.
If ``load`` fails, every caller of that batch gets the exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any


class BatchLoader[K, V]:
    def __init__(
        self,
        load: Callable[[Sequence[K]], Awaitable[dict[K, V]]],
        max_batch: int = 100,
        name: str = "batch-loader",
    ) -> None:
        self._load = load
        self._max_batch = max_batch
        self._name = name
        # each caller's own future, so that a cancelled caller cancels only its own (no shield:
        # a shield costs a future, two callbacks and a pass of the event loop per caller)
        self._pending: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.reads = 0  # for tests and metrics

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        waiting = self._pending.get(key)
        if waiting is None:
            self._pending[key] = [future]
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read_batches(), name=self._name)
        else:
            waiting.append(future)
        return await future

    async def _read_batches(self) -> None:
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._pending:
                keys = list(self._pending)[: self._max_batch]
                batch = {key: self._pending.pop(key) for key in keys}
                self.reads += 1
                try:
                    found = await self._load(keys)
                except Exception as exc:
                    for future in chain.from_iterable(batch.values()):
                        _fail(future, exc)
                else:
                    for key, futures in batch.items():
                        value = found.get(key)
                        for future in futures:
                            if not future.done():
                                future.set_result(value)
                batch = {}
        finally:  # cancelled (shutdown): nobody waits forever
            for future in chain(*batch.values(), *self._pending.values()):
                _fail(future, RuntimeError(f"{self._name} stopped"))
            self._pending.clear()


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # a cancelled caller never reads it
