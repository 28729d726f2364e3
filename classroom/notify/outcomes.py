"""Recording delivery outcomes: each written only while its lease still holds.

The outcomes of deliveries that finish while one transaction is being written go together in
the next (like the attendance record): one transaction — and on SQLite one turn at the writer
lock — for a batch of emails instead of one each. Each delivery still returns only once its
own outcome is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table, bindparam, select, update

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage

log = logging.getLogger(__name__)
GROUP_MAX = 100  # outcomes per transaction


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write on an outbox row, if ``lease_token`` still holds its lease."""

    message_id: str
    lease_token: str
    values: dict[str, object]


def _table() -> Table:
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    return table


async def write(db: Database, outcomes: Sequence[Outcome]) -> list[bool]:
    """Write ``outcomes`` in one transaction; for each, whether its lease still held (an
    outcome whose lease was lost is not written)."""
    table = _table()
    async with db.transaction() as tx:
        if len(outcomes) == 1:
            (one,) = outcomes
            result = await tx.execute(
                update(table)
                .where(table.c.id == one.message_id, table.c.lease_token == one.lease_token)
                .values(**one.values)
            )
            return [bool(getattr(result, "rowcount", 0))]
        ids = [o.message_id for o in outcomes]
        rows = await tx.execute(
            select(table.c.id, table.c.lease_token).where(table.c.id.in_(ids)).with_for_update()
        )
        held = {(row_id, token) for row_id, token in rows}
        kept = [(o.message_id, o.lease_token) in held for o in outcomes]
        shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for outcome, holds in zip(outcomes, kept, strict=True):
            if holds:
                shape = tuple(sorted(outcome.values))
                params: dict[str, object] = {
                    "o_id": outcome.message_id,
                    "o_token": outcome.lease_token,
                }
                params |= {f"o_{key}": value for key, value in outcome.values.items()}
                shapes.setdefault(shape, []).append(params)
        for shape, params_list in shapes.items():
            await tx.execute(
                update(table)
                .where(table.c.id == bindparam("o_id"), table.c.lease_token == bindparam("o_token"))
                .values({key: bindparam(f"o_{key}") for key in shape}),
                params_list,
            )
    return kept


@dataclass(slots=True)
class _Waiting:
    outcome: Outcome
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class OutcomeWriter:
    """Writes outcomes in groups; ``record`` returns once its outcome is committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: Outcome) -> bool:
        """Whether the lease still held (the outcome is written) or was lost (not written)."""
        waiting = _Waiting(outcome)
        self._queue.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="outbox-outcomes")
        return await asyncio.shield(waiting.done)

    async def _write_groups(self) -> None:
        group: list[_Waiting] = []
        try:
            while self._queue:
                group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                try:
                    kept = await write(self._db, [w.outcome for w in group])
                except Exception as exc:
                    for waiting in group:
                        if not waiting.done.done():
                            waiting.done.set_exception(exc)
                    continue
                for waiting, holds in zip(group, kept, strict=True):
                    if not waiting.done.done():
                        waiting.done.set_result(holds)
        finally:  # cancelled: nobody waits for ever
            for waiting in [*group, *self._queue]:
                if not waiting.done.done():
                    waiting.done.cancel()

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Let the outcomes being written finish (up to ``grace_seconds``), then stop."""
        task, self._writer = self._writer, None
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=grace_seconds)
        if not done:
            log.warning("outbox: outcomes still being written after %ss; cancelled", grace_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
