"""Helpers for tests that drive a real server with real Socket.IO clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import socketio

from classroom.auth import Identity
from classroom.db.engine import Database
from classroom.db.tables import Session, SessionParticipant, utcnow
from classroom.users.directory import upsert_user

RECAP = (
    "Topics covered: factoring quadratics and the quadratic formula. How your tutee did: "
    "solved six of eight problems alone. Next steps: word problems and graphing parabolas."
)
assert len(RECAP) >= 150


async def seed_session(
    db: Database,
    tutor: Identity,
    students: Sequence[Identity],
    *,
    starts_at: datetime | None = None,
    duration_minutes: int = 60,
    state: str = "accepted",
    mode: str = "online",
    acceptance: str = "accepted",
) -> str:
    """Insert a session directly (the classroom tests are not about scheduling)."""
    starts_at = starts_at or utcnow().replace(microsecond=0) - timedelta(minutes=1)
    async with db.transaction() as tx:
        for who in (tutor, *students):
            await upsert_user(tx, who)
        session = Session(
            tutor_id=tutor.user_id,
            starts_at=starts_at,
            duration_minutes=duration_minutes,
            topic="Quadratic equations",
            notes="private",
            mode=mode,
            state=state,
        )
        tx.add(session)
        await tx.flush()
        for student in students:
            tx.add(
                SessionParticipant(
                    session_id=session.id, student_id=student.user_id, acceptance=acceptance
                )
            )
        return session.id


class Client:
    """A real ``socketio.AsyncClient`` on ``/classroom`` that records what the server pushes."""

    def __init__(self, name: str = "client", reconnection: bool = False) -> None:
        self.name = name
        self.sio = socketio.AsyncClient(
            reconnection=reconnection, reconnection_delay=0.1, reconnection_delay_max=0.2
        )
        self.events: dict[str, list[Any]] = {}
        self._changed = asyncio.Condition()
        for event in (
            "presence",
            "can_complete",
            "classroom_closed",
            "removed",
            "media_status",
            "message",
            "conversation_read",
        ):
            self.sio.on(event, self._recorder(event), namespace="/classroom")

    def _recorder(self, event: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            self.events.setdefault(event, []).append(data)
            async with self._changed:
                self._changed.notify_all()

        return record

    async def connect(self, url: str, token: str) -> Client:
        await self.sio.connect(
            url,
            namespaces=["/classroom"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, data, namespace="/classroom", timeout=timeout)

    def presence(self) -> list[dict[str, Any]]:
        return self.events.get("presence", [])

    def latest(self, event: str) -> Any:
        values = self.events.get(event) or [None]
        return values[-1]

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool], timeout: float = 10
    ) -> Any:
        """Wait (bounded) until an ``event`` payload satisfying ``predicate`` has arrived."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for value in self.events.get(event, []):
                    if predicate(value):
                        return value
                await self._changed.wait()

    async def wait_presence(self, expected: dict[str, str], timeout: float = 10) -> dict[str, Any]:
        """Wait until the latest presence snapshot shows exactly ``{user_id: status}``."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                latest = self.latest("presence")
                if latest is not None and statuses(latest) == expected:
                    return dict(latest)
                await self._changed.wait()

    async def kill_transport(self) -> None:
        """Drop the connection abruptly, the way a lost network or a crashed browser does."""
        ws = self.sio.eio.ws
        assert ws is not None
        await ws.close()

    async def close(self) -> None:
        await self.sio.shutdown()


def statuses(snapshot: dict[str, Any]) -> dict[str, str]:
    return {p["user_id"]: p["status"] for p in snapshot["participants"]}


Connect = Callable[[Identity], Awaitable["Client"]]
"""``connect(who)``: a connected ``Client`` for ``who`` (the ``connect`` fixture)."""


async def wait_until(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10
) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
