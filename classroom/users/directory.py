"""Keeps the users table in step with the claims of authenticated requests."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.batch import BatchLoader
from classroom.db.engine import Database
from classroom.db.tables import ParentLink, User, utcnow

# built once: building a statement per read cost about a third of a small batch's read
_USERS = select(User.id, User.role, User.name, User.email).where(
    User.id.in_(bindparam("ids", expanding=True))
)
_LINKS = select(ParentLink.parent_id, ParentLink.student_id).where(
    ParentLink.parent_id.in_(bindparam("ids", expanding=True))
)


class _Stored(NamedTuple):
    role: str
    name: str
    email: str | None
    children: frozenset[str]  # a parent's linked students (empty for others)

    @classmethod
    def of(cls, identity: Identity) -> _Stored:
        children = frozenset(identity.children) if identity.role == "parent" else frozenset()
        return cls(identity.role, identity.name, identity.email, children)


class UserDirectory:
    """Upserts a user (and a parent's links) whenever their claims change; cheap when they don't.

    A connect storm (every student of the hour at once) reads the users it has not seen yet
    together, one query for all of them (``BatchLoader``), and writes only those whose stored
    row differs, in a transaction shared with the other small writes of the moment."""

    def __init__(self, db: Database, cache_size: int = 10_000) -> None:
        self._db = db
        self._seen: OrderedDict[str, Identity] = OrderedDict()
        self._cache_size = cache_size
        self._stored: BatchLoader[str, _Stored] = BatchLoader(self._load, name="users")

    async def remember(self, identity: Identity) -> None:
        if self._seen.get(identity.user_id) == identity:
            self._seen.move_to_end(identity.user_id)
            return
        stored = await self._stored.get(identity.user_id)  # a read first: a storm writes nothing
        if stored != _Stored.of(identity):

            async def write(tx: AsyncSession) -> None:
                await upsert_user(tx, identity)

            await self._db.groups.run(write)
        self._seen[identity.user_id] = identity
        if len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)

    async def _load(self, user_ids: Sequence[str]) -> dict[str, _Stored]:
        """What the users table (and the parent links) say of these users."""
        async with self._db.reader() as tx:
            rows = await tx.execute(_USERS, {"ids": list(user_ids)})
            users = {user_id: (role, name, email) for user_id, role, name, email in rows}
            parents = [u for u, (role, _, _) in users.items() if role == "parent"]
            links: dict[str, set[str]] = {u: set() for u in parents}
            if parents:
                found = await tx.execute(_LINKS, {"ids": parents})
                for parent_id, student_id in found:
                    links[parent_id].add(student_id)
        return {
            user_id: _Stored(role, name, email, frozenset(links.get(user_id, ())))
            for user_id, (role, name, email) in users.items()
        }

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
