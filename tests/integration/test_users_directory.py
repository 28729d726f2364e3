"""The users directory reads what the users table (and a parent's links) hold, many users in one
read, and writes only the users whose claims differ from it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlalchemy import select

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import ParentLink, User
from classroom.users.directory import UserDirectory
from tests.conftest import People


async def remember_all(db: Database, everyone: list[Identity]) -> int:
    """Remember everyone at once through a directory that has seen nobody (a fresh process): the
    group-commit transactions that took."""
    users = UserDirectory(db)
    before = db.groups.transactions
    await asyncio.wait_for(asyncio.gather(*(users.remember(who) for who in everyone)), 30)
    return db.groups.transactions - before


async def test_claims_as_stored_write_nothing_and_changed_ones_are_written(
    db: Database, people: People
) -> None:
    everyone = [people.tutor, people.student, people.student2, people.parent, people.admin]
    assert await remember_all(db, everyone) >= 1  # the first time: everyone written
    # the same claims, read back (the parent's links included): nothing to write
    assert await remember_all(db, everyone) == 0

    moved = replace(people.parent, children=("student-1", "student-2"))
    renamed = replace(people.student, name="Sara S.")
    changed = [people.tutor, renamed, people.student2, moved, people.admin]
    assert await remember_all(db, changed) in (1, 2)  # the two changes (one group or two)
    async with db.reader() as tx:
        links = (await tx.execute(select(ParentLink.student_id))).scalars().all()
        stored = await tx.get(User, people.student.user_id)
    assert sorted(links) == ["student-1", "student-2"]
    assert stored is not None and stored.name == "Sara S."
    assert await remember_all(db, changed) == 0
