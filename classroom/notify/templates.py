"""Email bodies from ``string.Template``s: plain text and HTML, every user value HTML-escaped.

A message is an intro paragraph, a table of details, optional blocks (a recap, a review) and an
outro. Templates are trusted sentences with ``$name`` placeholders; the values are people's names,
topics, reasons and recaps, so the HTML body escapes each of them before substitution.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from string import Template
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True, slots=True)
class MailTemplate:
    subject: Template
    intro: Template
    outro: Template | None = None


def _t(text: str) -> Template:
    return Template(text)


TEMPLATES: dict[str, MailTemplate] = {
    "session.requested:student": MailTemplate(
        _t("New tutoring session request from $tutor"),
        _t("$tutor has requested a tutoring session with you on $when."),
        _t("Please accept or decline it from your sessions page."),
    ),
    "session.requested:parent": MailTemplate(
        _t("New tutoring session request for $children"),
        _t("$tutor has requested a tutoring session with $children on $when."),
        _t("The session is confirmed once every student accepts it."),
    ),
    "session.requested:tutor": MailTemplate(
        _t("Session requested: $when"),
        _t("Your session request for $when has been sent to $students."),
        _t("It is confirmed once every student accepts it."),
    ),
    "session.accepted": MailTemplate(
        _t("$student accepted your session on $when"),
        _t("$student accepted the tutoring session on $when."),
    ),
    "session.declined": MailTemplate(
        _t("$student declined your session on $when"),
        _t("$student declined the tutoring session on $when."),
    ),
    "session.rescheduled": MailTemplate(
        _t("Session moved to $when"),
        _t("The tutoring session with $tutor has been moved from $previous to $when."),
        _t("$action"),
    ),
    "session.cancelled": MailTemplate(
        _t("Session cancelled: $when"),
        _t("The tutoring session with $tutor on $when has been cancelled$by."),
    ),
    "session.withdrawn:tutor": MailTemplate(
        _t("$student withdrew from your session on $when"),
        _t("$student has withdrawn from the group session on $when. It goes ahead with $students."),
    ),
    "session.withdrawn:student": MailTemplate(
        _t("You withdrew from the session on $when"),
        _t("You have withdrawn from the tutoring session with $tutor on $when."),
        _t("It is removed from your calendar."),
    ),
    "session.withdrawn:parent": MailTemplate(
        _t("$student withdrew from the session on $when"),
        _t("$student has withdrawn from the tutoring session with $tutor on $when."),
    ),
    "session.completed:student": MailTemplate(
        _t("Session recap from $tutor"),
        _t("Your tutoring session with $tutor on $when is complete. Here is the recap."),
        _t("How did it go? Please rate and review your session from your sessions page."),
    ),
    "session.completed:parent": MailTemplate(
        _t("Session recap for $children"),
        _t("The tutoring session of $children with $tutor on $when is complete."),
    ),
    "review.received": MailTemplate(
        _t("New review from $student: $rating/5"),
        _t("$student reviewed the session on $when and rated it $rating out of 5."),
    ),
    "reminder": MailTemplate(
        _t("Reminder: tutoring session $in_time"),
        _t("Your tutoring session with $tutor starts $in_time, on $when."),
    ),
    "message.received": MailTemplate(
        _t("New message from $sender"),
        _t("$sender sent you a message."),
        _t("Reply from your messages page."),
    ),
    "session.no_show:student_no_show": MailTemplate(
        _t("Missed session: $when"),
        _t(
            "$absent did not join the tutoring session with $tutor on $when, "
            "so $tutor ended it as a no-show."
        ),
        _t("$action"),
    ),
    "session.no_show:tutor_no_show": MailTemplate(
        _t("Missed session: $when"),
        _t(
            "$tutor did not join the tutoring session on $when while $reporter waited in the "
            "classroom, so it was marked missed. Nobody is charged for it."
        ),
        _t("$action"),
    ),
    "session.removed:student": MailTemplate(
        _t("Removed from the session on $when"),
        _t(
            "$tutor removed you from the tutoring session on $when. You will not be charged for it."
        ),
    ),
    "session.removed:parent": MailTemplate(
        _t("$children removed from the session on $when"),
        _t(
            "$tutor removed $children from the tutoring session on $when. "
            "You will not be charged for it."
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Block:
    """A titled free-text section such as a recap; newlines are kept."""

    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str

    def to_payload(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "html": self.html}


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name``, or None for UTC (no name, "UTC", or a name this host lacks)."""
    if not name or name in ("UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_when(value: datetime, timezone: str | None = None) -> str:
    """A date and time as a reader sees it, always labelled with its zone: ``Monday 4 March
    2030, 17:00 UTC`` or, in a known zone, ``Monday 4 March 2030, 12:00 EST (America/New_York)``."""
    tz = zone(timezone)
    local = value.astimezone(tz or UTC)
    label = "UTC" if tz is None else f"{local:%Z} ({tz.key})"
    return f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M} {label}"


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _escape(value: str) -> str:
    return html.escape(value, quote=True).replace("\n", "<br>\n")


def render(
    name: str,
    *,
    recipient: str,
    values: Mapping[str, str],
    details: Sequence[tuple[str, str]] = (),
    blocks: Sequence[Block] = (),
) -> Rendered:
    """Subject, text and HTML of template ``name`` for ``recipient`` (a display name)."""
    template = TEMPLATES[name]
    plain = dict(values)
    escaped = {key: _escape(value) for key, value in values.items()}
    subject = _one_line(template.subject.substitute(plain))
    intro = template.intro.substitute(plain)
    outro = template.outro.substitute(plain) if template.outro else ""

    text_parts = [f"Hi {recipient},", intro]
    if details:
        width = max(len(label) for label, _ in details) + 1
        text_parts.append("\n".join(f"{label + ':':<{width}} {value}" for label, value in details))
    text_parts.extend(f"{block.title}\n{block.text}" for block in blocks)
    if outro:
        text_parts.append(outro)
    text = "\n\n".join(part for part in text_parts if part) + "\n"

    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{_escape(label)}</th>'
        f"<td>{_escape(value)}</td></tr>\n"
        for label, value in details
    )
    html_parts = [
        f"<p>Hi {_escape(recipient)},</p>",
        f"<p>{template.intro.substitute(escaped)}</p>",
    ]
    if rows:
        html_parts.append(f"<table>\n{rows}</table>")
    html_parts.extend(f"<h3>{_escape(b.title)}</h3>\n<p>{_escape(b.text)}</p>" for b in blocks)
    outro_html = template.outro.substitute(escaped) if template.outro else ""
    if outro_html:
        html_parts.append(f"<p>{outro_html}</p>")
    body = "\n".join(html_parts)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_escape(subject)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return Rendered(subject=subject, text=text, html=page)
