"""Demo data: a tutor, a student with a linked parent, an accepted online session starting now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from classroom.auth import Identity, TokenCodec
from classroom.db.engine import Database
from classroom.db.tables import Session, SessionParticipant, SessionTransition, TutorProfile, utcnow
from classroom.users.directory import upsert_user

TUTOR = Identity("demo-tutor", "tutor", "Taylor Tutor", "tutor@example.test")
STUDENT = Identity("demo-student", "student", "Sam Student", "student@example.test")
PARENT = Identity("demo-parent", "parent", "Pat Parent", "parent@example.test", ("demo-student",))


@dataclass(frozen=True)
class DemoLinks:
    session_id: str
    tutor_url: str
    student_url: str
    parent_url: str


async def seed_demo(db: Database, tokens: TokenCodec, base_url: str) -> DemoLinks:
    now = utcnow().replace(second=0, microsecond=0)
    async with db.transaction() as tx:
        for identity in (TUTOR, STUDENT, PARENT):
            await upsert_user(tx, identity)
        if await tx.get(TutorProfile, TUTOR.user_id) is None:
            tx.add(
                TutorProfile(
                    tutor_id=TUTOR.user_id, hourly_rate_cents=6000, timezone="UTC", availability=[]
                )
            )
        session = Session(
            tutor_id=TUTOR.user_id,
            starts_at=now,
            duration_minutes=60,
            topic="Quadratic equations - solving and graphing",
            notes="Demo session",
            mode="online",
            state="accepted",
            created_at=now - timedelta(days=1),
        )
        tx.add(session)
        await tx.flush()
        tx.add(
            SessionParticipant(
                session_id=session.id,
                student_id=STUDENT.user_id,
                acceptance="accepted",
                responded_at=now,
            )
        )
        tx.add(
            SessionTransition(
                session_id=session.id,
                actor_id=TUTOR.user_id,
                from_state=None,
                to_state="requested",
                at=now - timedelta(days=1),
            )
        )
        tx.add(
            SessionTransition(
                session_id=session.id,
                actor_id=STUDENT.user_id,
                from_state="requested",
                to_state="accepted",
                at=now,
            )
        )
    ttl = 12 * 3600

    def link(identity: Identity) -> str:
        token = tokens.encode(
            identity.user_id,
            identity.role,
            identity.name,
            identity.email,
            identity.children,
            ttl_seconds=ttl,
        )
        return f"{base_url}/?token={token}#/sessions/{session.id}"

    return DemoLinks(session.id, link(TUTOR), link(STUDENT), link(PARENT))
