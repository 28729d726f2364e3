"""Media follows presence: joins open a media connection, leaves and closes end it."""

from __future__ import annotations

from typing import Any

from classroom.media.presence import MediaFollowsPresence
from classroom.rooms.model import Change, Member
from classroom.sessions.ports import PresenceSnapshot
from tests.unit.test_media_events import RecordingGateway

TUTOR = Member("tutor-1", "Tina Tutor", "tutor")
STUDENT = Member("student-1", "Sara Student", "student")


def change(**kwargs: Any) -> Change:
    return Change(snapshot=PresenceSnapshot("s-1", 1, ()), changed=True, **kwargs)


async def test_media_opens_on_join_and_closes_on_leave_or_close() -> None:
    gateway = RecordingGateway()
    senders: list[tuple[str, str]] = []

    def sender_for(session_id: str, user_id: str) -> Any:
        senders.append((session_id, user_id))

        async def send(event: str, payload: dict[str, Any]) -> None: ...

        return send

    listener = MediaFollowsPresence(gateway, sender_for)
    await listener.presence_changed(change(joined=(TUTOR, STUDENT)))
    await listener.presence_changed(change(reconnecting=(STUDENT,)))  # media stays
    await listener.presence_changed(change(left=((STUDENT, "timeout"),)))
    await listener.classroom_closed("s-1", "completed")

    assert gateway.calls == [
        ("open", "s-1", "tutor-1"),
        ("open", "s-1", "student-1"),
        ("close_participant", "s-1", "student-1"),
        ("close_room", "s-1"),
    ]
    assert senders == [("s-1", "tutor-1"), ("s-1", "student-1")]
