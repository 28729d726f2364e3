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


def details(session: SessionInfo, link: str | None = None) -> list[tuple[str, str]]:
    rows = [
        ("When", format_when(session.starts_at)),
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


def _values(session: SessionInfo, **extra: str) -> dict[str, str]:
    return {
        "tutor": session.tutor.display_name,
        "students": _names(session.students),
        "when": format_when(session.starts_at),
        **extra,
    }


def requested(session: SessionInfo, link: str | None = None) -> list[Outgoing]:
    """To each student and linked parent, and a copy to the tutor: all with the invitation."""
    rows = details(session, link)
    out: list[Outgoing] = []
    for person in session.everyone():
        if person.user_id == session.tutor.user_id:
            name, values = "session.requested:tutor", _values(session)
        elif person.role == "parent":
            children = _names(children_of(session, person))
            name, values = "session.requested:parent", _values(session, children=children)
        else:
            name, values = "session.requested:student", _values(session)
        rendered = render(name, recipient=person.display_name, values=values, details=rows)
        key = f"session.requested:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.requested", key, rendered, "REQUEST"))
    return out


def responded(
    session: SessionInfo, student: Person, accepted: bool, sequence: int, link: str | None = None
) -> list[Outgoing]:
    """To the tutor: a student accepted (with the invitation) or declined."""
    topic = "session.accepted" if accepted else "session.declined"
    rendered = render(
        topic,
        recipient=session.tutor.display_name,
        values=_values(session, student=student.display_name),
        details=details(session, link),
    )
    key = f"{topic}:{session.id}:{sequence}:{student.user_id}"
    return [Outgoing(session.tutor, topic, key, rendered, "REQUEST" if accepted else None)]


_RESCHEDULE_ACTION = {
    "student": "Please accept the new time from your sessions page.",
    "parent": "The session is confirmed again once every student accepts the new time.",
    "tutor": "Your students are asked to accept the new time.",
}


def rescheduled(
    session: SessionInfo, previous_starts_at: datetime, sequence: int, link: str | None = None
) -> list[Outgoing]:
    """To everyone: the new time, with the updated invitation (same UID, higher SEQUENCE)."""
    rows = details(session, link)
    out: list[Outgoing] = []
    for person in session.everyone():
        role = "tutor" if person.user_id == session.tutor.user_id else person.role
        values = _values(
            session,
            previous=format_when(previous_starts_at),
            action=_RESCHEDULE_ACTION.get(role, ""),
        )
        rendered = render(
            "session.rescheduled", recipient=person.display_name, values=values, details=rows
        )
        key = f"session.rescheduled:{session.id}:{sequence}:{person.user_id}"
        out.append(Outgoing(person, "session.rescheduled", key, rendered, "REQUEST"))
    return out


def cancelled(
    session: SessionInfo,
    *,
    reason: str | None,
    late: bool,
    by: Person | None,
    link: str | None = None,
) -> list[Outgoing]:
    """To everyone: the cancellation with its reason and lateness, cancelling the calendar event."""
    rows = details(session, link)
    if late:
        rows.append(("Late cancellation", "Yes, less than 24 hours before the start"))
    blocks = [Block("Reason", reason.strip())] if reason and reason.strip() else []
    values = _values(session, by=f" by {by.display_name}" if by else "")
    out: list[Outgoing] = []
    for person in session.everyone():
        rendered = render(
            "session.cancelled",
            recipient=person.display_name,
            values=values,
            details=rows,
            blocks=blocks,
        )
        key = f"session.cancelled:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.cancelled", key, rendered, "CANCEL"))
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
        rows = [("When", format_when(session.starts_at)), ("Tutor", session.tutor.display_name)]
        if person.role == "parent":
            children = children_of(session, person)
            name, values = "session.completed:parent", _values(session, children=_names(children))
            for child in children:
                if child.user_id in by_student:
                    rows += _invoice_rows(by_student[child.user_id], child.display_name)
        else:
            name, values = "session.completed:student", _values(session)
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
    blocks = [Block("Review", text.strip())] if text and text.strip() else []
    rendered = render(
        "review.received",
        recipient=session.tutor.display_name,
        values=_values(session, student=student.display_name, rating=str(rating)),
        details=[("When", format_when(session.starts_at)), ("Rating", f"{rating}/5")],
        blocks=blocks,
    )
    key = f"review.received:{session.id}:{student.user_id}"
    return [Outgoing(session.tutor, "review.received", key, rendered)]


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
    rows = details(session, link)
    values = _values(session, in_time=in_time(minutes_before))
    out: list[Outgoing] = []
    for person in session.everyone():
        rendered = render("reminder", recipient=person.display_name, values=values, details=rows)
        key = f"reminder:{session.id}:{sequence}:{minutes_before}:{person.user_id}"
        out.append(Outgoing(person, "reminder", key, rendered, "REQUEST"))
    return out
