"""iCalendar (RFC 5545) text for session invitations and the subscribable feed.

One event per session with the stable UID ``<session id>@classroom``; each change of time or a
cancellation raises SEQUENCE, so calendars update or cancel the same event. Lines end in CRLF and
are folded at 75 octets without splitting a UTF-8 character.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Literal

from classroom.notify.model import Person, SessionInfo

PRODID = "-//classroom//classroom notifications//EN"
Method = Literal["REQUEST", "CANCEL"]
_CONFIRMED_STATES = frozenset({"accepted", "in_progress", "completed", "missed"})
_CANCELLED_STATES = frozenset({"cancelled", "declined"})


def event_uid(session_id: str) -> str:
    return f"{session_id}@classroom"


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newlines escaped; other controls dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\n", "\\n")
    return "".join(ch for ch in value if ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127))


def param_value(value: str) -> str:
    """A parameter value (e.g. CN): quoted, without quotes or control characters inside."""
    clean = "".join(ch for ch in value if ch != '"' and ord(ch) >= 32 and ord(ch) != 127)
    return f'"{clean}"'


def fold(line: str) -> str:
    """Fold one content line into CRLF-separated chunks of at most 75 octets."""
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    chunks: list[str] = []
    limit = 75
    current = ""
    size = 0
    for ch in line:
        width = len(ch.encode())
        if size + width > limit:
            chunks.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with one space
        current += ch
        size += width
    chunks.append(current)
    return "\r\n ".join(chunks) + "\r\n"


def format_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _mailto(address: str) -> str:
    return "mailto:" + "".join(ch for ch in address if ch not in '\r\n";:, ')


def summary(session: SessionInfo) -> str:
    title = f"Tutoring session: {session.topic}" if session.topic else "Tutoring session"
    return " ".join(title.split())


def description(session: SessionInfo, url: str | None) -> str:
    lines = [
        f"Tutor: {session.tutor.display_name}",
        "Students: " + ", ".join(s.display_name for s in session.students),
        f"Duration: {session.duration_minutes} minutes",
        "Online classroom" if session.mode == "online" else "In person",
    ]
    if session.topic:
        lines.append(f"Topic: {' '.join(session.topic.split())}")
    if url:
        lines.append(url)
    return "\n".join(lines)


def _event_lines(
    session: SessionInfo,
    *,
    sequence: int,
    status: str,
    now: datetime,
    url: str | None,
    organizer: str | None,
    attendee: Person | None,
) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{event_uid(session.id)}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{format_utc(now)}",
        f"DTSTART:{format_utc(session.starts_at)}",
        f"DTEND:{format_utc(session.ends_at)}",
        f"SUMMARY:{escape_text(summary(session))}",
        f"DESCRIPTION:{escape_text(description(session, url))}",
        "LOCATION:" + escape_text("Online classroom" if session.mode == "online" else "In person"),
        f"STATUS:{status}",
    ]
    if url:
        lines.append(f"URL:{escape_text(url)}")
    if organizer:
        name, address = parseaddr(organizer)
        if address:
            lines.append(f"ORGANIZER;CN={param_value(name or 'Classroom')}:{_mailto(address)}")
    if attendee is not None and attendee.email:
        lines.append(
            f"ATTENDEE;CN={param_value(attendee.display_name)};ROLE=REQ-PARTICIPANT;"
            f"PARTSTAT=NEEDS-ACTION;RSVP=FALSE:{_mailto(attendee.email)}"
        )
    lines.append("END:VEVENT")
    return lines


def _calendar(lines: Iterable[str], method: str | None, name: str | None = None) -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    if method:
        head.append(f"METHOD:{method}")
    if name:
        head.append(f"X-WR-CALNAME:{escape_text(name)}")
    return "".join(fold(line) for line in [*head, *lines, "END:VCALENDAR"])


def feed_status(state: str) -> str:
    if state in _CANCELLED_STATES:
        return "CANCELLED"
    return "CONFIRMED" if state in _CONFIRMED_STATES else "TENTATIVE"


def render_invite(
    session: SessionInfo,
    *,
    method: Method,
    sequence: int,
    now: datetime,
    attendee: Person | None = None,
    organizer: str | None = None,
    url: str | None = None,
) -> str:
    """The attachment of one session email: METHOD:REQUEST (new or moved) or METHOD:CANCEL."""
    status = "CANCELLED" if method == "CANCEL" else feed_status(session.state)
    event = _event_lines(
        session,
        sequence=sequence,
        status=status,
        now=now,
        url=url,
        organizer=organizer,
        attendee=attendee,
    )
    return _calendar(event, method)


def render_feed(
    entries: Iterable[tuple[SessionInfo, int]],
    *,
    now: datetime,
    name: str = "Tutoring sessions",
    url: str | None = None,
) -> str:
    """A subscribable calendar of (session, calendar sequence) pairs; cancelled ones marked so."""
    lines: list[str] = []
    for session, sequence in entries:
        lines.extend(
            _event_lines(
                session,
                sequence=sequence,
                status=feed_status(session.state),
                now=now,
                url=url,
                organizer=None,
                attendee=None,
            )
        )
    return _calendar(lines, "PUBLISH", name)


def unfold(text: str) -> list[str]:
    """Content lines of an iCalendar text (the inverse of ``fold``); handy for readers and tests."""
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]
