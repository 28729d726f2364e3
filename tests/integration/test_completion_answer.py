"""log_time_and_leave answers the session summary built from what the completing transaction
read: it must be the summary the session shows right after, and what a repeat answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from classroom.db.engine import Database
from classroom.db.tables import Attendance, utcnow
from classroom.sessions.api import SESSIONS
from classroom.sessions.service import SessionService
from tests.conftest import People
from tests.support import RECAP, Connect, seed_session


@pytest.mark.parametrize("ended", [True, False], ids=["after_the_end", "before_the_end"])
async def test_the_ack_is_the_summary_the_session_shows_after(
    db: Database, people: People, connect: Connect, server: TestClient[Any, Any], ended: bool
) -> None:
    # Scheduled to end ten minutes ago, the tutor's leave when the classroom closes moves the
    # logging deadline, so the answer must include it; ending in fifty minutes, it does not.
    starts_at = utcnow().replace(microsecond=0) - timedelta(minutes=70 if ended else 10)
    session_id = await seed_session(db, people.tutor, [people.student], starts_at=starts_at)
    tutor, student = await connect(people.tutor), await connect(people.student)
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("leave_call", {}))["ok"]
    await tutor.wait_presence({"tutor-1": "present"})

    done = await tutor.call("log_time_and_leave", {"minutes": 45, "recap": RECAP})
    assert done["ok"], done
    answered = done["session"]
    service: SessionService = server.app[SESSIONS]
    assert answered == await service.get_summary(people.tutor, session_id)
    again = await service.complete_session(people.tutor, session_id, 45, RECAP + "  ", summary=True)
    assert again == answered

    async with db.reader() as tx:
        last_leave = await tx.scalar(
            select(func.max(Attendance.left_at)).where(Attendance.session_id == session_id)
        )
    assert last_leave is not None
    anchor = max(last_leave, starts_at + timedelta(minutes=60))
    assert (anchor == last_leave) == ended
    expected = (anchor + timedelta(hours=72)).isoformat().replace("+00:00", "Z")
    assert answered["logging_deadline"] == expected
    assert answered["state"] == "completed"
    assert (answered["logged_minutes"], answered["recap"]) == (45, RECAP)
    assert answered["completed_by"] == {"id": "tutor-1", "name": people.tutor.name}
    assert [s["name"] for s in answered["students"]] == [people.student.name]
    assert answered["classroom"]["open"] is False
    assert "notes" in answered  # the tutor's view
