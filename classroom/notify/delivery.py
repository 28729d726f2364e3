"""Turning one claimed outbox row into an email or a webhook request.

``Channels.deliver`` returns on success and raises otherwise; ``PermanentDeliveryError`` means
retrying cannot help (the worker records the failure at once), anything else is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from classroom.notify.errors import PermanentDeliveryError
from classroom.notify.mail import MailTransport
from classroom.notify.outbox import EMAIL, WEBHOOK
from classroom.notify.rendering import MailRenderer
from classroom.notify.webhook import WebhookSender

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row a worker holds the lease on: what to deliver, and the token proving the lease."""

    id: str
    kind: str
    topic: str
    recipient: str | None
    session_id: str | None
    sequence: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    lease_token: str

    def describe(self) -> str:
        target = self.recipient or f"session {self.session_id} #{self.sequence}"
        return f"{self.kind} {self.topic} to {target}"


class Channels:
    """The ways out: one mail transport (emails rendered by ``renderer``, on the loop when
    none is given), and a webhook sender when a URL is configured."""

    def __init__(
        self,
        mail: MailTransport,
        mail_from: str,
        webhooks: WebhookSender | None = None,
        renderer: MailRenderer | None = None,
    ) -> None:
        self.mail = mail
        self.mail_from = mail_from
        self.webhooks = webhooks
        self.renderer = renderer or MailRenderer(processes=0)

    async def deliver(self, message: Claimed) -> None:
        if message.kind == EMAIL:
            try:
                email = await self.renderer.render(
                    message.id, message.payload, self.mail_from, message.created_at
                )
            except (KeyError, ValueError) as exc:
                raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
            await self.mail.send(email, message.id, message.created_at)
        elif message.kind == WEBHOOK:
            if self.webhooks is None:
                raise PermanentDeliveryError("CLASSROOM_WEBHOOK_URL is not configured")
            await self.webhooks.send(message.id, message.payload, message.attempts)
        else:
            raise PermanentDeliveryError(f"unknown outbox kind {message.kind!r}")

    async def close(self) -> None:
        await self.renderer.close()
        if self.webhooks is not None:
            await self.webhooks.close()
