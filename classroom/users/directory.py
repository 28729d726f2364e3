"""Keeps the users table in step with the claims of authenticated requests."""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import ParentLink, User, utcnow


class UserDirectory:
    """Upserts a user (and a parent's links) whenever their claims change; cheap when they don't."""

    def __init__(self, db: Database, cache_size: int = 10_000) -> None:
        self._db = db
        self._seen: OrderedDict[str, Identity] = OrderedDict()
        self._cache_size = cache_size

    async def remember(self, identity: Identity) -> None:
        if self._seen.get(identity.user_id) == identity:
            self._seen.move_to_end(identity.user_id)
            return
        if not await self._stored_as(identity):  # a read first: a reconnect storm writes nothing
            async with self._db.transaction() as tx:
                await upsert_user(tx, identity)
        self._seen[identity.user_id] = identity
        if len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)

    async def _stored_as(self, identity: Identity) -> bool:
        """Whether the users table (and a parent's links) already says what the claims say."""
        async with self._db.reader() as tx:
            row = await tx.get(User, identity.user_id)
            if row is None or (row.role, row.name, row.email) != (
                identity.role,
                identity.name,
                identity.email,
            ):
                return False
            if identity.role != "parent":
                return True
            links = await tx.execute(
                select(ParentLink.student_id).where(ParentLink.parent_id == identity.user_id)
            )
            return set(links.scalars()) == set(identity.children)

    async def get(self, user_id: str) -> User | None:
        async with self._db.reader() as tx:
            return await tx.get(User, user_id)


async def upsert_user(tx: AsyncSession, identity: Identity) -> None:
    insert = postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {
        "id": identity.user_id,
        "role": identity.role,
        "name": identity.name,
        "email": identity.email,
        "updated_at": utcnow(),
    }
    stmt = insert(User).values(**values)
    await tx.execute(
        stmt.on_conflict_do_update(
            index_elements=[User.id],
            set_={k: stmt.excluded[k] for k in ("role", "name", "email", "updated_at")},
        )
    )
    if identity.role == "parent":
        current = set(
            (
                await tx.execute(
                    select(ParentLink.student_id).where(ParentLink.parent_id == identity.user_id)
                )
            ).scalars()
        )
        wanted = set(identity.children)
        if current - wanted:
            await tx.execute(
                delete(ParentLink).where(
                    ParentLink.parent_id == identity.user_id,
                    ParentLink.student_id.in_(current - wanted),
                )
            )
        for student_id in sorted(wanted - current):
            tx.add(ParentLink(parent_id=identity.user_id, student_id=student_id))
