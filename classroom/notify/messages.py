"""Who gets which email for each use case, and what it says (pure: no I/O, no database).

Every function returns ``Outgoing`` items: the person, the outbox topic, an idempotency key, the
rendered subject and bodies, and the calendar method of the attached invitation (if any).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from classroom.notify.model import InvoiceInfo, Person, SessionInfo
from classroom.notify.templates import Block, Rendered, format_when, render

CalendarMethod = Literal["REQUEST", "CANCEL"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    person: Person
    topic: str
    key: str
    rendered: Rendered
    calendar: CalendarMethod | None = None


def _names(people: Sequence[Person]) -> str:
    names = [p.display_name for p in people]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def children_of(session: SessionInfo, parent: Person) -> tuple[Person, ...]:
    return tuple(s for s in session.students if s.user_id in parent.children)


def when(session: SessionInfo, person: Person, value: datetime | None = None) -> str:
    """``value`` (default: the start) in ``person``'s timezone, labelled (UTC when unknown)."""
    return format_when(session.starts_at if value is None else value, person.timezone)


def details(
    session: SessionInfo, link: str | None = None, reader: Person | None = None
) -> list[tuple[str, str]]:
    rows = [
        ("When", format_when(session.starts_at, reader.timezone if reader else None)),
        ("Duration", f"{session.duration_minutes} minutes"),
        ("Tutor", session.tutor.display_name),
        ("Students" if len(session.students) > 1 else "Student", _names(session.students)),
    ]
    if session.topic:
        rows.append(("Topic", " ".join(session.topic.split())))
    rows.append(("Where", "Online classroom" if session.mode == "online" else "In person"))
    if link:
        rows.append(("Link", link))
    return rows


def _values(session: SessionInfo, reader: Person, **extra: str) -> dict[str, str]:
    return {
        "tutor": session.tutor.display_name,
        "students": _names(session.students),
        "when": when(session, reader),
        **extra,
    }


def requested(session: SessionInfo, link: str | None = None) -> list[Outgoing]:
    """To each student and linked parent, and a copy to the tutor: all with the invitation."""
    out: list[Outgoing] = []
    for person in session.everyone():
        if person.user_id == session.tutor.user_id:
            name, values = "session.requested:tutor", _values(session, person)
        elif person.role == "parent":
            children = _names(children_of(session, person))
            name = "session.requested:parent"
            values = _values(session, person, children=children)
        else:
            name, values = "session.requested:student", _values(session, person)
        rendered = render(
            name,
            recipient=person.display_name,
            values=values,
            details=details(session, link, person),
        )
        key = f"session.requested:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.requested", key, rendered, "REQUEST"))
    return out


def responded(
    session: SessionInfo, student: Person, accepted: bool, sequence: int, link: str | None = None
) -> list[Outgoing]:
    """To the tutor: a student accepted (with the invitation) or declined."""
    topic = "session.accepted" if accepted else "session.declined"
    tutor = session.tutor
    rendered = render(
        topic,
        recipient=tutor.display_name,
        values=_values(session, tutor, student=student.display_name),
        details=details(session, link, tutor),
    )
    key = f"{topic}:{session.id}:{sequence}:{student.user_id}"
    return [Outgoing(tutor, topic, key, rendered, "REQUEST" if accepted else None)]


_RESCHEDULE_ACTION = {
    "student": "Please accept the new time from your sessions page.",
    "parent": "The session is confirmed again once every student accepts the new time.",
    "tutor": "Your students are asked to accept the new time.",
}


def rescheduled(
    session: SessionInfo, previous_starts_at: datetime, sequence: int, link: str | None = None
) -> list[Outgoing]:
    """To everyone: the new time, with the updated invitation (same UID, higher SEQUENCE)."""
    out: list[Outgoing] = []
    for person in session.everyone():
        role = "tutor" if person.user_id == session.tutor.user_id else person.role
        values = _values(
            session,
            person,
            previous=when(session, person, previous_starts_at),
            action=_RESCHEDULE_ACTION.get(role, ""),
        )
        rendered = render(
            "session.rescheduled",
            recipient=person.display_name,
            values=values,
            details=details(session, link, person),
        )
        key = f"session.rescheduled:{session.id}:{sequence}:{person.user_id}"
        out.append(Outgoing(person, "session.rescheduled", key, rendered, "REQUEST"))
    return out


def _reason_blocks(reason: str | None) -> list[Block]:
    return [Block("Reason", reason.strip())] if reason and reason.strip() else []


_LATE = ("Late cancellation", "Yes, less than 24 hours before the start")


def cancelled(
    session: SessionInfo,
    *,
    reason: str | None,
    late: bool,
    by: Person | None,
    link: str | None = None,
) -> list[Outgoing]:
    """To everyone: the cancellation with its reason and lateness, cancelling the calendar event."""
    out: list[Outgoing] = []
    for person in session.everyone():
        rows = details(session, link, person) + ([_LATE] if late else [])
        rendered = render(
            "session.cancelled",
            recipient=person.display_name,
            values=_values(session, person, by=f" by {by.display_name}" if by else ""),
            details=rows,
            blocks=_reason_blocks(reason),
        )
        key = f"session.cancelled:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.cancelled", key, rendered, "CANCEL"))
    return out


def withdrawn(
    session: SessionInfo,
    student: Person,
    parents: Sequence[Person],
    *,
    reason: str | None,
    late: bool,
    link: str | None = None,
) -> list[Outgoing]:
    """A student left a group booking (``session`` no longer lists them): the tutor is told,
    and the student and their linked parents get the calendar event cancelled."""
    out: list[Outgoing] = []
    for person in (session.tutor, student, *parents):
        if person.user_id == session.tutor.user_id:
            name, role = "session.withdrawn:tutor", "tutor"
        elif person.user_id == student.user_id:
            name, role = "session.withdrawn:student", "student"
        else:
            name, role = "session.withdrawn:parent", "parent"
        rows = details(session, link, person) + ([_LATE] if late else [])
        rendered = render(
            name,
            recipient=person.display_name,
            values=_values(session, person, student=student.display_name),
            details=rows,
            blocks=_reason_blocks(reason),
        )
        key = f"session.withdrawn:{session.id}:{student.user_id}:{person.user_id}"
        method: CalendarMethod | None = None if role == "tutor" else "CANCEL"
        out.append(Outgoing(person, "session.withdrawn", key, rendered, method))
    return out


def _invoice_rows(invoice: InvoiceInfo, who: str | None = None) -> list[tuple[str, str]]:
    suffix = f" ({who})" if who else ""
    return [
        (f"Invoice{suffix}", invoice.invoice_id),
        (f"Logged time{suffix}", f"{invoice.minutes} minutes"),
        (f"Amount{suffix}", invoice.amount_text),
    ]


def completed(
    session: SessionInfo, *, recap: str, minutes: int, invoices: Sequence[InvoiceInfo]
) -> list[Outgoing]:
    """To each student (recap, own invoice, review request) and linked parent (children's)."""
    by_student = {invoice.student_id: invoice for invoice in invoices}
    recap_block = [Block("What did you cover?", recap.strip())]
    out: list[Outgoing] = []
    for person in session.everyone():
        if person.user_id == session.tutor.user_id:
            continue
        rows = [("When", when(session, person)), ("Tutor", session.tutor.display_name)]
        if person.role == "parent":
            children = children_of(session, person)
            name = "session.completed:parent"
            values = _values(session, person, children=_names(children))
            for child in children:
                if child.user_id in by_student:
                    rows += _invoice_rows(by_student[child.user_id], child.display_name)
        else:
            name, values = "session.completed:student", _values(session, person)
            invoice = by_student.get(person.user_id)
            rows += _invoice_rows(invoice) if invoice else [("Logged time", f"{minutes} minutes")]
        rendered = render(
            name, recipient=person.display_name, values=values, details=rows, blocks=recap_block
        )
        key = f"session.completed:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.completed", key, rendered))
    return out


def review_received(
    session: SessionInfo, *, student: Person, rating: int, text: str | None
) -> list[Outgoing]:
    """To the tutor: the rating and the review text."""
    tutor = session.tutor
    blocks = [Block("Review", text.strip())] if text and text.strip() else []
    rendered = render(
        "review.received",
        recipient=tutor.display_name,
        values=_values(session, tutor, student=student.display_name, rating=str(rating)),
        details=[("When", when(session, tutor)), ("Rating", f"{rating}/5")],
        blocks=blocks,
    )
    key = f"review.received:{session.id}:{student.user_id}"
    return [Outgoing(tutor, "review.received", key, rendered)]


def in_time(minutes: int) -> str:
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "in 24 hours" if days == 1 else f"in {days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "in 1 hour" if hours == 1 else f"in {hours} hours"
    return f"in {minutes} minutes"


def reminder(
    session: SessionInfo, minutes_before: int, sequence: int, link: str | None = None
) -> list[Outgoing]:
    """To everyone, ``minutes_before`` the start, with the current invitation."""
    out: list[Outgoing] = []
    for person in session.everyone():
        rendered = render(
            "reminder",
            recipient=person.display_name,
            values=_values(session, person, in_time=in_time(minutes_before)),
            details=details(session, link, person),
        )
        key = f"reminder:{session.id}:{sequence}:{minutes_before}:{person.user_id}"
        out.append(Outgoing(person, "reminder", key, rendered, "REQUEST"))
    return out
