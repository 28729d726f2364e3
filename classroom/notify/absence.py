"""Who gets which email when a student does not come, is removed, or is sent a message (pure:
no I/O). Used by ``Notifier.message_received``, ``session_no_show`` and ``participant_removed``."""

from __future__ import annotations

from collections.abc import Sequence

from classroom.notify.messages import Outgoing
from classroom.notify.model import InvoiceInfo, Person, SessionInfo
from classroom.notify.templates import Block, format_when, render

STUDENT_NO_SHOW = "student_no_show"
TUTOR_NO_SHOW = "tutor_no_show"


def _names(people: Sequence[Person]) -> str:
    names = [p.display_name for p in people]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _rows(
    session: SessionInfo, link: str | None, reader: Person | None = None
) -> list[tuple[str, str]]:
    rows = [
        ("When", format_when(session.starts_at, reader.timezone if reader else None)),
        ("Duration", f"{session.duration_minutes} minutes"),
        ("Tutor", session.tutor.display_name),
    ]
    if session.topic:
        rows.append(("Topic", " ".join(session.topic.split())))
    if link:
        rows.append(("Link", link))
    return rows


def message_received(
    *, recipient: Person, sender: Person, text: str, message_id: int, link: str | None
) -> Outgoing:
    """To a recipient with no connected socket: who wrote, and the message (escaped in HTML)."""
    rows = [("From", sender.display_name)] + ([("Link", link)] if link else [])
    rendered = render(
        "message.received",
        recipient=recipient.display_name,
        values={"sender": sender.display_name},
        details=rows,
        blocks=[Block("Message", text)],
    )
    key = f"message.received:{message_id}:{recipient.user_id}"
    return Outgoing(recipient, "message.received", key, rendered)


def _no_show_action(session: SessionInfo, reason: str, person: Person) -> str:
    tutor, students = session.tutor.display_name, _names(session.students)
    if person.user_id == session.tutor.user_id:
        if reason == STUDENT_NO_SHOW:
            return f"Message {students} to agree on a new time, then book it from the link."
        return f"Please message {students} to offer a new time."
    if person.role == "parent":
        return f"{tutor} and your child can agree on a new time through Messages."
    return f"Message {tutor} to find a new time; the link opens the session."


def no_show(
    session: SessionInfo,
    *,
    reason: str,
    absent: Sequence[Person],
    reporter: Person | None,
    fees: Sequence[InvoiceInfo],
    link: str | None,
) -> list[Outgoing]:
    """To everyone (tutor, students, linked parents): who did not come, any no-show fee (each
    family sees its own), and how to find a new time."""
    fee_of = {invoice.student_id: invoice for invoice in fees}
    out: list[Outgoing] = []
    for person in session.everyone():
        rows = [*_rows(session, link, person), ("Did not join", _names(absent))]
        if person.user_id == session.tutor.user_id:
            payers = list(session.students)
        elif person.role == "parent":
            payers = [s for s in session.students if s.user_id in person.children]
        else:
            payers = [person]
        for payer in payers:
            if payer.user_id in fee_of:
                rows.append(
                    (f"No-show fee ({payer.display_name})", fee_of[payer.user_id].amount_text)
                )
        values = {
            "tutor": session.tutor.display_name,
            "when": format_when(session.starts_at, person.timezone),
            "absent": _names(absent),
            "reporter": reporter.display_name if reporter else "a student",
            "action": _no_show_action(session, reason, person),
        }
        rendered = render(
            f"session.no_show:{reason}", recipient=person.display_name, values=values, details=rows
        )
        key = f"session.no_show:{session.id}:{person.user_id}"
        out.append(Outgoing(person, "session.no_show", key, rendered))
    return out


def removed(
    session: SessionInfo,
    *,
    student: Person,
    parents: Sequence[Person],
    reason: str | None,
    link: str | None,
) -> list[Outgoing]:
    """To the removed student and their linked parents, cancelling their calendar event."""
    blocks = [Block("Reason", reason.strip())] if reason and reason.strip() else []
    values = {
        "tutor": session.tutor.display_name,
        "when": format_when(session.starts_at),
        "children": student.display_name,
    }
    out: list[Outgoing] = []
    for person in (student, *parents):
        name = "session.removed:parent" if person.role == "parent" else "session.removed:student"
        rendered = render(
            name,
            recipient=person.display_name,
            values=values,
            details=_rows(session, link),
            blocks=blocks,
        )
        key = f"session.removed:{session.id}:{student.user_id}:{person.user_id}"
        out.append(Outgoing(person, "session.removed", key, rendered, "CANCEL"))
    return out
