"""Email out: through SMTP (``CLASSROOM_SMTP_URL``), or into a folder of ``.eml`` files.

An email is built and rendered to bytes by ``render`` (in a helper process: see
``classroom.notify.rendering``); a transport hands the bytes over. Rendered emails are 7-bit
(non-ASCII text quoted-printable or base64), so any SMTP server takes them as they are
(aiosmtplib turns the line ends into CRLF on the wire).

URL forms: ``smtp://user:pass@host:25`` (STARTTLS when the server offers it),
``smtp+starttls://...:587`` (STARTTLS required), ``smtps://...:465`` (TLS from the start);
``?timeout=SECONDS`` optional. With no URL each message becomes ``<time>-<id>.eml`` in
``CLASSROOM_MAIL_DIR`` plus one log line, so nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from classroom.notify.errors import PermanentDeliveryError

log = logging.getLogger(__name__)


_SAME_EVERY_TIME = frozenset(
    {"from", "mime-version", "content-transfer-encoding", "auto-submitted"}
)


class _Headers(HeaderRegistry):
    """The standard header classes, each made once (``HeaderRegistry`` builds a new class on
    every lookup), and the headers every email repeats parsed once (headers are immutable):
    together half the cost of building an email."""

    PARSED_MAX = 64

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        key = name.lower()
        same = key in _SAME_EVERY_TIME or (key == "content-type" and "boundary" not in value)
        if not same:
            return super().__call__(name, value)
        parsed = self._parsed.get((name, value))
        if parsed is None:
            parsed = super().__call__(name, value)
            if len(self._parsed) < self.PARSED_MAX:
                self._parsed[name, value] = parsed
        return parsed


POLICY = email.policy.default.clone(header_factory=_Headers())
# What a rendered email is built with: 7-bit bodies (no SMTP server needs 8BITMIME for them).
WIRE = POLICY.clone(cte_type="7bit")


@dataclass(frozen=True, slots=True)
class Rendered:
    """An email ready to hand over: the whole message as bytes, and its envelope."""

    data: bytes
    sender: str
    recipients: tuple[str, ...]
    to: str  # the To header and the subject, for the log line
    subject: str


class MailTransport(Protocol):
    async def send(self, email: Rendered, message_id: str, created_at: datetime) -> None:
        """Hand ``email`` over for delivery, or raise."""


def build_message(
    message_id: str,
    payload: dict[str, Any],
    mail_from: str,
    created_at: datetime,
    policy: email.policy.EmailPolicy[EmailMessage] = POLICY,
) -> EmailMessage:
    """The MIME message of an email outbox row: text and HTML alternatives, plus the .ics."""
    message = EmailMessage(policy=policy)
    message["From"] = mail_from
    message["To"] = formataddr((str(payload.get("to_name") or ""), str(payload["to"])))
    message["Subject"] = str(payload["subject"])
    message["Date"] = format_datetime(created_at)
    message["Message-ID"] = f"<{message_id}@classroom>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(str(payload["text"]))
    message.add_alternative(str(payload["html"]), subtype="html")
    ics = payload.get("ics")
    if ics:
        method = str(payload.get("ics_method") or "REQUEST")
        message.add_attachment(
            str(ics).encode(),
            maintype="text",
            subtype="calendar",
            filename="invite.ics" if method == "REQUEST" else "cancel.ics",
            params={"method": method, "charset": "utf-8"},
        )
    return message


def render(
    message_id: str, payload: dict[str, Any], mail_from: str, created_at: datetime
) -> Rendered:
    """Build the email of an outbox row and render it; ``KeyError``/``ValueError`` when the
    payload cannot make one (retrying will not help)."""
    message = build_message(message_id, payload, mail_from, created_at, WIRE)
    sender = parseaddr(mail_from)[1]
    if not sender:
        raise ValueError(f"no address in the sender {mail_from!r}")
    return Rendered(
        data=message.as_bytes(),
        sender=sender,
        recipients=(str(payload["to"]),),
        to=str(message["To"]),
        subject=str(message["Subject"]),
    )


class SmtpTransport:
    """One SMTP connection per message through aiosmtplib."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ValueError(f"unsupported SMTP URL scheme {parts.scheme!r}")
        query = parse_qs(parts.query)
        self.host = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.start_tls: bool | None = True if parts.scheme == "smtp+starttls" else None
        if self.use_tls:
            self.start_tls = False
        self.port = parts.port or (465 if self.use_tls else 587 if self.start_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = float(query.get("timeout", ["30"])[0])

    async def send(self, email: Rendered, message_id: str, created_at: datetime) -> None:
        try:
            await aiosmtplib.send(
                email.data,
                sender=email.sender,
                recipients=list(email.recipients),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                raise PermanentDeliveryError(f"recipient refused: {exc}") from exc
            raise
        except aiosmtplib.SMTPDataError as exc:
            if exc.code >= 500:  # the server rejected this message's content for good
                raise PermanentDeliveryError(f"SMTP {exc.code}: {exc.message}") from exc
            raise
        log.info("mail %s to %s sent through %s:%s", message_id, email.to, self.host, self.port)


class FolderTransport:
    """The embedded default: each message written as an .eml file (written whole, then renamed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path_for(self, message_id: str, created_at: datetime) -> Path:
        return self.folder / f"{created_at:%Y%m%dT%H%M%S}-{message_id}.eml"

    def _write(self, data: bytes, path: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    async def send(self, email: Rendered, message_id: str, created_at: datetime) -> None:
        path = self.path_for(message_id, created_at)
        await asyncio.to_thread(self._write, email.data, path)
        log.info(
            "mail %s to %s (%s) written to %s (no CLASSROOM_SMTP_URL)",
            message_id,
            email.to,
            email.subject,
            path,
        )
