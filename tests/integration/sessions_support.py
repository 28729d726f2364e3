"""Helpers for the sessions tests: a movable clock, a fake classroom gate, an API driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from classroom.auth import Identity
from classroom.errors import ParticipantsRemain
from classroom.sessions.api import SESSIONS
from classroom.sessions.ports import PresenceEntry, PresenceSnapshot
from classroom.sessions.service import SessionService
from tests.conftest import People

RECAP = (
    "Topics covered: solving quadratic equations by factoring and with the formula. "
    "How the tutee did: confident by the end. Next steps: word problems and graphs."
)
assert len(RECAP) >= 150
# Exactly 150 characters, as a tutor would write it.
RECAP_150 = (
    "Covered factoring and the quadratic formula; Sara solved six problems alone and checked "
    "her answers. Next: word problems and graphing parabolas later."
)
assert len(RECAP_150) == 150


def recap(length: int = 150) -> str:
    return ("r" * length)[:length]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2030, 3, 4, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, value: datetime) -> datetime:
        self.now = value
        return value


@dataclass
class FakeGate:
    """A ClassroomGate recording its calls; ``inside`` users are present in the classroom."""

    inside: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    fail_completed: bool = False

    async def close_for_completion(self, session_id: str, tutor_id: str) -> None:
        self.calls.append(("close_for_completion", session_id))
        if self.inside.get(session_id, set()) - {tutor_id}:
            raise ParticipantsRemain()
        self.closed.add(session_id)

    async def reopen(self, session_id: str) -> None:
        self.calls.append(("reopen", session_id))
        self.closed.discard(session_id)

    async def snapshot(self, session_id: str) -> PresenceSnapshot:
        entries = tuple(
            PresenceEntry(u, u, "student", "present")
            for u in sorted(self.inside.get(session_id, ()))
        )
        return PresenceSnapshot(session_id, len(entries), entries)

    async def completed(self, session_id: str) -> None:
        self.calls.append(("completed", session_id))
        if self.fail_completed:
            raise RuntimeError("media teardown failed")

    def media_stats(self, session_id: str) -> dict[str, dict[str, Any]]:
        return {}

    async def close(self, session_id: str, reason: str) -> None:
        self.calls.append(("close", session_id))
        self.closed.add(session_id)

    async def remove_participant(self, session_id: str, user_id: str) -> None:
        self.calls.append(("remove_participant", session_id))
        self.inside.get(session_id, set()).discard(user_id)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Api:
    """Drives the HTTP API as the people of ``People``; asserts statuses and returns bodies."""

    def __init__(self, client: TestClient[Any, Any], people: People) -> None:
        self.client = client
        self.people = people
        self.clock = Clock()
        self.service.clock = self.clock

    @property
    def service(self) -> SessionService:
        service: SessionService = self.client.app[SESSIONS]
        return service

    async def call(
        self,
        method: str,
        path: str,
        who: Identity,
        body: Any = None,
        status: int | None = 200,
        code: str | None = None,
    ) -> Any:
        response = await self.client.request(
            method, path, json=body, headers=self.people.headers(who)
        )
        data = await response.json()
        if code is not None:
            assert response.status >= 400, data
            assert data["error"]["code"] == code, data
        if status is not None:
            assert response.status == status, data
        return data

    async def get(self, path: str, who: Identity, **kw: Any) -> Any:
        return await self.call("GET", path, who, **kw)

    async def post(self, path: str, who: Identity, body: Any = None, **kw: Any) -> Any:
        return await self.call("POST", path, who, body, **kw)

    async def error(
        self, method: str, path: str, who: Identity, body: Any, status: int, code: str
    ) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(method, path, who, body, status=status, code=code)
        return data["error"]  # type: ignore[no-any-return]

    async def book(
        self,
        starts_at: datetime,
        duration: int = 60,
        students: list[Identity] | None = None,
        tutor: Identity | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "student_ids": [s.user_id for s in (students or [self.people.student])],
            "starts_at": iso(starts_at),
            "duration_minutes": duration,
            **extra,
        }
        data: dict[str, Any] = await self.post(
            "/api/sessions", tutor or self.people.tutor, body, status=201
        )
        return data

    async def booked_and_accepted(self, starts_at: datetime, **kw: Any) -> dict[str, Any]:
        session = await self.book(starts_at, **kw)
        for student in kw.get("students") or [self.people.student]:
            await self.post(f"/api/sessions/{session['id']}/accept", student)
        return session

    async def known(self, *who: Identity) -> None:
        """Make people known to the server (as the platform's tokens do on first use)."""
        for person in who:
            await self.get("/api/sessions", person)
