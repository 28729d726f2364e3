"""Reading: session lists, history, invoices and a tutor's balance, filtered by who is asking."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from classroom.auth import Identity
from classroom.db.tables import Invoice, LedgerEntry
from classroom.db.tables import Session as SessionRow
from classroom.errors import Forbidden, InvalidPayload, NotFound
from classroom.sessions import model, store, views
from classroom.sessions.base import ServiceBase

MAX_LIST = 500


def _range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidPayload("to: must not be before from.")


class QueryUseCases(ServiceBase):
    async def list_sessions(
        self,
        identity: Identity,
        start: datetime | None = None,
        end: datetime | None = None,
        state: str | None = None,
        limit: int = 200,
    ) -> dict[str, Any]:
        """Sessions the caller may see starting in [start, end), earliest first."""
        _range(start, end)
        if state is not None and state not in {s.value for s in model.State}:
            raise InvalidPayload(f"state: one of {', '.join(s.value for s in model.State)}.")
        limit = max(1, min(limit, MAX_LIST))
        async with self._db.reader() as tx:
            query = select(SessionRow.id).order_by(SessionRow.starts_at, SessionRow.id).limit(limit)
            visible = await store.visible_filter(tx, identity)
            if visible is not None:
                query = query.where(visible)
            if start is not None:
                query = query.where(SessionRow.starts_at >= start)
            if end is not None:
                query = query.where(SessionRow.starts_at < end)
            if state is not None:
                query = query.where(SessionRow.state == state)
            ids = list((await tx.execute(query)).scalars())
        return {"sessions": await self.list_by_ids(identity, ids)}

    async def list_by_ids(self, identity: Identity, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Summaries (the session view without presence, attendance, money and history)."""
        if not ids:
            return []
        now = self._now()
        async with self._db.reader() as tx:
            rows = {
                r.id: r
                for r in (
                    await tx.execute(select(SessionRow).where(SessionRow.id.in_(list(ids))))
                ).scalars()
            }
            participants = await store.participants_of(tx, list(rows))
            leaves = await store.last_leaves(tx, list(rows))
            children = (
                await store.children_of(tx, identity.user_id)
                if identity.role == "parent"
                else frozenset()
            )
            known = await store.names(
                tx,
                [r.tutor_id for r in rows.values()]
                + [r.cancelled_by or "" for r in rows.values()]
                + [r.completed_by or "" for r in rows.values()]
                + [p.student_id for ps in participants.values() for p in ps],
            )
        result = []
        for session_id in ids:
            row = rows.get(session_id)
            if row is None:
                continue
            relation = store.relation_of(identity, row, participants[row.id], children)
            if relation is None:
                continue
            loaded = store.Loaded(row, participants[row.id], relation, identity.user_id, children)
            deadline = store.deadline_after(
                row, leaves.get(row.id), self._settings.logging_window_hours
            )
            result.append(self._summary(loaded, known, now, deadline))
        return result

    async def history(self, identity: Identity, session_id: str) -> dict[str, Any]:
        async with self._db.reader() as tx:
            await self._load(tx, identity, session_id)
            items = await store.transitions(tx, session_id)
            known = await store.names(tx, [t.actor_id or "" for t in items])
        return {"session_id": session_id, "history": views.history_view(items, known)}

    async def session_invoices(self, identity: Identity, session_id: str) -> dict[str, Any]:
        """The invoices of a completed session the caller may see (a student: their own)."""
        async with self._db.reader() as tx:
            loaded = await self._load(tx, identity, session_id)
            found = await store.invoices(tx, session_id)
            if loaded.relation in ("student", "former_student"):
                found = [i for i in found if i.student_id == identity.user_id]
            elif loaded.relation == "parent":
                found = [i for i in found if i.student_id in loaded.children]
            if not found:
                raise NotFound("This session has no invoice (yet).")
            known = await store.names(tx, [loaded.row.tutor_id, *(i.student_id for i in found)])
        return {
            "session_id": session_id,
            "invoices": [views.invoice_view(i, known, loaded.row) for i in found],
        }

    async def list_invoices(
        self,
        identity: Identity,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 200,
    ) -> dict[str, Any]:
        """Invoices created in [start, end), newest first: a student's own, a parent's children's,
        a tutor's issued ones, or all for support."""
        _range(start, end)
        limit = max(1, min(limit, MAX_LIST))
        async with self._db.reader() as tx:
            query = select(Invoice, SessionRow).join(
                SessionRow, SessionRow.id == Invoice.session_id
            )
            if identity.role == "student":
                query = query.where(Invoice.student_id == identity.user_id)
            elif identity.role == "parent":
                children = await store.children_of(tx, identity.user_id)
                query = query.where(Invoice.student_id.in_(sorted(children)))
            elif identity.role == "tutor":
                query = query.where(Invoice.tutor_id == identity.user_id)
            if start is not None:
                query = query.where(Invoice.created_at >= start)
            if end is not None:
                query = query.where(Invoice.created_at < end)
            query = query.order_by(Invoice.created_at.desc(), Invoice.id).limit(limit)
            pairs = list(await tx.execute(query))
            known = await store.names(
                tx, [i.student_id for i, _ in pairs] + [i.tutor_id for i, _ in pairs]
            )
        return {"invoices": [views.invoice_view(i, known, row) for i, row in pairs]}

    async def balance(self, identity: Identity, limit: int = 50) -> dict[str, Any]:
        """A tutor's balance: the sum of their ledger entries, with the latest entries."""
        if identity.role != "tutor":
            raise Forbidden("Only tutors have a balance.")
        account = f"tutor:{identity.user_id}"
        limit = max(1, min(limit, MAX_LIST))
        async with self._db.reader() as tx:
            total = await tx.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                    LedgerEntry.account == account
                )
            )
            entries = list(
                (
                    await tx.execute(
                        select(LedgerEntry)
                        .where(LedgerEntry.account == account)
                        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
                        .limit(limit)
                    )
                ).scalars()
            )
        return {
            "tutor_id": identity.user_id,
            "balance_cents": int(total or 0),
            "entries": [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "amount_cents": e.amount_cents,
                    "session_id": e.session_id,
                    "invoice_id": e.invoice_id,
                    "created_at": store.iso(e.created_at),
                }
                for e in entries
            ],
        }
