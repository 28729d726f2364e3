"""Plain data the notifications are written from.

The sessions service hands these in; nothing here knows its ORM objects. ``SessionInfo`` has no
field for the tutor's private notes, so no message can ever carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a message is for or about. ``children`` (parents only): their students here.
    ``timezone``: an IANA zone the person's emails show times in (known for tutors, from their
    profile); None shows UTC."""

    user_id: str
    name: str
    email: str | None = None
    role: str = "student"  # tutor | student | parent
    children: tuple[str, ...] = ()
    timezone: str | None = None

    @property
    def display_name(self) -> str:
        return " ".join(self.name.split()) or self.user_id


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One booking as the participants see it (never the tutor's notes)."""

    id: str
    tutor: Person
    students: tuple[Person, ...]
    starts_at: datetime
    duration_minutes: int
    parents: tuple[Person, ...] = ()
    topic: str | None = None
    mode: str = "online"  # online | in_person
    state: str = "requested"

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None:
            raise ValueError("SessionInfo.starts_at must be timezone-aware")

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    def student(self, user_id: str) -> Person | None:
        return next((s for s in self.students if s.user_id == user_id), None)

    def parents_of(self, student_id: str) -> tuple[Person, ...]:
        return tuple(p for p in self.parents if student_id in p.children)

    def everyone(self) -> tuple[Person, ...]:
        """Tutor, students and linked parents, each once."""
        seen: set[str] = set()
        people: list[Person] = []
        for person in (self.tutor, *self.students, *self.parents):
            if person.user_id not in seen:
                seen.add(person.user_id)
                people.append(person)
        return tuple(people)


@dataclass(frozen=True, slots=True)
class InvoiceInfo:
    """An invoice as the sessions service generated it; shown as given, never computed here."""

    invoice_id: str
    student_id: str
    minutes: int
    amount_cents: int
    currency: str = "USD"

    @property
    def amount_text(self) -> str:
        sign = "-" if self.amount_cents < 0 else ""
        whole, cents = divmod(abs(self.amount_cents), 100)
        return f"{sign}{whole}.{cents:02d} {self.currency}"


class SessionEventLike(Protocol):
    """An event of the sessions service (``classroom.sessions.events``), as notify reads it."""

    @property
    def kind(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...
