"""The directory's one-statement read of a session as its notifications show it, against the
calendar feed's read of the same sessions (several statements), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, ParentLink, SessionParticipant, TutorProfile, User
from classroom.db.tables import Session as SessionRow
from classroom.notify.directory import load_ending_session, load_session_info, sessions_for
from classroom.notify.model import Person, SessionInfo
from classroom.notify.outbox import EMAIL, enqueue

START = datetime(2030, 5, 6, 15, 0, tzinfo=UTC)


async def _seed(db: Database) -> None:
    async with db.transaction() as tx:
        for user_id, role, name, email in (
            ("tutor-a", "tutor", "Tina  Tutor", "tina@example.test"),
            ("tutor-b", "tutor", "Tom Tutor", None),
            ("student-1", "student", "Sara Student", "sara@example.test"),
            ("student-3", "student", "Gone Student", "gone@example.test"),
            ("parent-1", "parent", "Paula Parent", "paula@example.test"),
            ("parent-2", "parent", "Pete Parent", None),
            ("parent-9", "parent", "Removed's Parent", "p9@example.test"),
        ):
            tx.add(User(id=user_id, role=role, name=name, email=email))
        tx.add(TutorProfile(tutor_id="tutor-a", timezone="Europe/Paris", availability=[]))
        # student-2 never connected (no users row); parent-3 neither
        for parent, student in (
            ("parent-1", "student-1"),
            ("parent-1", "student-2"),
            ("parent-2", "student-1"),
            ("parent-3", "student-2"),
            ("parent-9", "student-3"),
        ):
            tx.add(ParentLink(parent_id=parent, student_id=student))
        tx.add(
            SessionRow(
                id="group",
                tutor_id="tutor-a",
                starts_at=START,
                duration_minutes=60,
                topic="Algebra",
                notes="private",
                mode="online",
                state="in_progress",
            )
        )
        tx.add(
            SessionRow(
                id="single",
                tutor_id="tutor-b",
                starts_at=START + timedelta(days=1),
                duration_minutes=45,
                mode="in_person",
                state="accepted",
            )
        )
        tx.add(
            SessionRow(
                id="empty",
                tutor_id="tutor-b",
                starts_at=START + timedelta(days=2),
                duration_minutes=30,
                state="requested",
            )
        )
        await tx.flush()
        for session_id, student_id, removed in (
            ("group", "student-2", False),
            ("group", "student-1", False),
            ("group", "student-3", True),
            ("single", "student-1", False),
        ):
            tx.add(
                SessionParticipant(session_id=session_id, student_id=student_id, removed=removed)
            )


async def test_one_session_reads_as_the_feed_reads_it(db: Database) -> None:
    await _seed(db)
    async with db.reader() as tx:
        group = await load_session_info(tx, "group")
        single = await load_session_info(tx, "single")
        empty = await load_session_info(tx, "empty")
        assert await load_session_info(tx, "nope") is None
        feed = {
            info.id: info
            for tutor in ("tutor-a", "tutor-b")
            for info in await sessions_for(tx, tutor, "tutor", since=START - timedelta(days=1))
        }
    assert (group, single, empty) == (feed["group"], feed["single"], feed["empty"])

    assert isinstance(group, SessionInfo)
    assert group.tutor == Person(
        "tutor-a", "Tina  Tutor", "tina@example.test", "tutor", (), "Europe/Paris"
    )
    assert group.students == (
        Person("student-1", "Sara Student", "sara@example.test", "student"),
        Person("student-2", "student-2", None, "student"),  # the removed student-3 left out
    )
    assert [(p.user_id, p.name, p.email, p.children) for p in group.parents] == [
        ("parent-1", "Paula Parent", "paula@example.test", ("student-1", "student-2")),
        ("parent-2", "Pete Parent", None, ("student-1",)),
        ("parent-3", "parent-3", None, ("student-2",)),
    ]
    assert (group.topic, group.mode, group.state, group.duration_minutes) == (
        "Algebra",
        "online",
        "in_progress",
        60,
    )
    assert isinstance(single, SessionInfo)
    assert single.tutor == Person("tutor-b", "Tom Tutor", None, "tutor", (), None)
    assert [p.user_id for p in single.parents] == ["parent-1", "parent-2"]
    assert isinstance(empty, SessionInfo)
    assert (empty.students, empty.parents) == ((), ())


async def test_an_ending_session_says_whether_reminders_are_pending(db: Database) -> None:
    await _seed(db)

    async def pending() -> tuple[bool, bool]:
        async with db.reader() as tx:
            group = await load_ending_session(tx, "group")
            single = await load_ending_session(tx, "single")
            assert await load_ending_session(tx, "nope") is None
        assert group is not None and single is not None
        async with db.reader() as tx:
            assert group[0] == await load_session_info(tx, "group")
        return group[1], single[1]

    assert await pending() == (False, False)
    async with db.transaction() as tx:
        for key, topic, status in (
            ("r-1", "reminder", "sent"),
            ("r-2", "reminder", "cancelled"),
            ("c-1", "session.completed", "pending"),
        ):
            await enqueue(tx, kind=EMAIL, topic=topic, key=key, payload={}, session_id="group")
            await tx.execute(
                update(OutboxMessage)
                .where(OutboxMessage.idempotency_key == key)
                .values(status=status)
            )
    assert await pending() == (False, False)
    async with db.transaction() as tx:
        await enqueue(tx, kind=EMAIL, topic="reminder", key="r-3", payload={}, session_id="group")
    assert await pending() == (True, False)
