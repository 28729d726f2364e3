"""The real receivers the notification tests deliver to: an SMTP server (aiosmtpd) and an HTTP
webhook endpoint (aiohttp), both on 127.0.0.1 with ephemeral ports; plus shared helpers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage, utcnow
from classroom.notify.delivery import Channels
from classroom.notify.mail import FolderTransport, MailTransport, SmtpTransport, render
from classroom.notify.model import Person, SessionInfo
from classroom.notify.webhook import WebhookSender, verify
from classroom.notify.worker import OutboxWorker, WorkerOptions

SECRET = "webhook-secret-for-tests"
MAIL_FROM = "Classroom <classroom@example.test>"
FAST = WorkerOptions(
    max_attempts=4,
    lease_seconds=30,
    retry_base_seconds=0.05,
    retry_max_seconds=1,
    poll_seconds=0.2,
)


class SmtpSink:
    """aiosmtpd's SMTP protocol served on the test's own event loop."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: set[str] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_RCPT(
        self, server: SMTP, session: object, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: object, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, enable_SMTPUTF8=True), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            raw = envelope.content
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            message = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.body)
        return value


@dataclass
class WebhookReceiver:
    """Records every request; ``status_for(event, attempt_no)`` decides the reply status."""

    hits: list[Hit] = field(default_factory=list)
    status_for: Callable[[dict[str, Any], int], int] = lambda event, attempt: 200
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hit = Hit(dict(request.headers), body, time.monotonic())
        self.hits.append(hit)
        attempt = sum(1 for h in self.hits if h.event["id"] == hit.event["id"])
        status = self.status_for(hit.event, attempt)
        return web.Response(status=status, text="ok" if status < 300 else "receiver broke")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    def accepted(self) -> list[dict[str, Any]]:
        """Events the receiver answered 2xx, in arrival order."""
        out = []
        for index, hit in enumerate(self.hits):
            attempt = sum(1 for h in self.hits[: index + 1] if h.event["id"] == hit.event["id"])
            if self.status_for(hit.event, attempt) < 300:
                out.append(hit.event)
        return out


@asynccontextmanager
async def running_smtp() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


@asynccontextmanager
async def running_receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with running_smtp() as sink:
        yield sink


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as hook:
        yield hook


def make_worker(
    db: Database,
    *,
    mail: MailTransport,
    webhook_url: str | None = None,
    options: WorkerOptions = FAST,
    clock: Callable[[], datetime] = utcnow,
    name: str | None = None,
) -> OutboxWorker:
    webhooks = WebhookSender(webhook_url, SECRET, timeout=5) if webhook_url else None
    return OutboxWorker(db, Channels(mail, MAIL_FROM, webhooks), options, clock=clock, name=name)


async def drain(worker: OutboxWorker, rounds: int = 50) -> int:
    """Run passes until nothing is due; the number of rows handled."""
    total = 0
    for _ in range(rounds):
        handled = await worker.run_once()
        if not handled:
            return total
        total += handled
    raise AssertionError("the outbox did not drain")


async def outbox_rows(db: Database) -> list[OutboxMessage]:
    async with db.reader() as tx:
        rows = await tx.execute(select(OutboxMessage).order_by(OutboxMessage.created_at))
        return list(rows.scalars())


TUTOR = Person("tutor-1", "Tina Tutor", "tina@example.test", "tutor")
STUDENT = Person("student-1", "Sara Student", "sara@example.test", "student")
STUDENT2 = Person("student-2", "Sid Student", "sid@example.test", "student")
PARENT = Person("parent-1", "Paula Parent", "paula@example.test", "parent", ("student-1",))


def a_session(session_id: str = "s-1", **changes: Any) -> SessionInfo:
    values: dict[str, Any] = {
        "id": session_id,
        "tutor": TUTOR,
        "students": (STUDENT, STUDENT2),
        "parents": (PARENT,),
        "starts_at": (utcnow() + timedelta(days=3)).replace(microsecond=0),
        "duration_minutes": 60,
        "topic": "Algebra: quadratic equations",
        "mode": "online",
        "state": "requested",
    }
    values.update(changes)
    return SessionInfo(**values)


# --- the receivers themselves ------------------------------------------------------------


def a_payload(to: str = "x@example.test", text: str = "hello") -> dict[str, Any]:
    return {"to": to, "to_name": "X", "subject": "ping", "text": text, "html": f"<p>{text}</p>"}


async def test_smtp_sink_receives_through_the_real_transport(smtp: SmtpSink) -> None:
    rendered = render("m-1", a_payload(text="héllo"), MAIL_FROM, utcnow())
    await SmtpTransport(smtp.url).send(rendered, "m-1", utcnow())
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "classroom@example.test"
    assert envelope.rcpt_tos == ["x@example.test"]
    assert "SMTPUTF8" not in envelope.mail_options
    [message] = smtp.to("x@example.test")
    assert message["Subject"] == "ping"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().splitlines() == ["héllo"]


async def test_webhook_receiver_verifies_the_signature(receiver: WebhookReceiver) -> None:
    sender = WebhookSender(receiver.url, SECRET, timeout=5)
    try:
        await sender.send("e-1", {"id": "e-1", "type": "session.started"}, 1)
    finally:
        await sender.close()
    [hit] = receiver.hits
    assert verify(SECRET, hit.body, hit.headers["X-Classroom-Signature"])
    assert not verify("another secret", hit.body, hit.headers["X-Classroom-Signature"])
    assert hit.headers["Idempotency-Key"] == hit.headers["X-Classroom-Event-Id"] == "e-1"


async def test_folder_transport_is_used_without_smtp(tmp_path: Any) -> None:
    created = utcnow()
    rendered = render("m-1", a_payload(), MAIL_FROM, created)
    folder = FolderTransport(tmp_path / "mail")
    await folder.send(rendered, "m-1", created)
    assert folder.path_for("m-1", created).read_bytes() == rendered.data


async def test_aiohttp_client_can_reach_receiver(receiver: WebhookReceiver) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(receiver.url, data=b'{"id": "x"}') as response:
            assert response.status == 200
