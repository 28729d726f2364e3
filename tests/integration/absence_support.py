"""Helpers for the Messages, no-show and removal tests: HTTP calls, mails, bounded waits."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import OutboxMessage
from tests.conftest import People


def mails(folder: Path) -> list[EmailMessage]:
    """The .eml files the outbox worker wrote (no SMTP configured), oldest first."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of an email."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def outbox(db: Database, topic: str) -> list[OutboxMessage]:
    async with db.reader() as tx:
        rows = await tx.execute(
            select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


class Http:
    """The HTTP API as the usual cast; asserts the status and returns the JSON body."""

    def __init__(self, client: TestClient[Any, Any], people: People) -> None:
        self.client = client
        self.people = people

    async def call(
        self, method: str, path: str, who: Identity, body: Any = None, status: int = 200
    ) -> Any:
        response = await self.client.request(
            method, path, json=body, headers=self.people.headers(who)
        )
        data = await response.json()
        assert response.status == status, data
        return data

    async def get(self, path: str, who: Identity, status: int = 200) -> Any:
        return await self.call("GET", path, who, status=status)

    async def post(self, path: str, who: Identity, body: Any = None, status: int = 200) -> Any:
        return await self.call("POST", path, who, body, status=status)

    async def error(self, method: str, path: str, who: Identity, body: Any, status: int) -> str:
        """The error code of a refused call."""
        data = await self.call(method, path, who, body, status=status)
        code: str = data["error"]["code"]
        return code
