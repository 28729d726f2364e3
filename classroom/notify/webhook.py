"""Signed webhook requests to ``CLASSROOM_WEBHOOK_URL``.

Body: the event as compact JSON with sorted keys (the same bytes on every retry). Headers:
``X-Classroom-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed by
CLASSROOM_WEBHOOK_SECRET>``, ``X-Classroom-Event-Id`` and ``Idempotency-Key`` (the event id),
``X-Classroom-Event`` (the type), ``X-Classroom-Delivery-Attempt``. Any 2xx is success.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import aiohttp
import orjson

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Classroom-Signature"
USER_AGENT = "classroom-webhooks/1"


class WebhookError(Exception):
    """The receiver did not take the event (a non-2xx status or a network failure)."""


def encode_body(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the HMAC over the raw body, compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookSender:
    def __init__(self, url: str, secret: str, timeout: float = 10.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def send(self, event_id: str, event: dict[str, Any], attempt: int) -> None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        body = encode_body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(self._secret, body),
            "X-Classroom-Event-Id": event_id,
            "X-Classroom-Event": str(event.get("type", "")),
            "X-Classroom-Delivery-Attempt": str(attempt),
            "Idempotency-Key": event_id,
        }
        try:
            async with self._http.post(self.url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return
                text = (await response.text(errors="replace"))[:200]
                raise WebhookError(f"HTTP {response.status} from {self.url}: {text}".strip())
        except aiohttp.ClientError as exc:
            raise WebhookError(f"{type(exc).__name__} posting to {self.url}: {exc}") from exc

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
