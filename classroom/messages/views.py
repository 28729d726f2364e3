"""The JSON shapes of conversations and messages."""

from __future__ import annotations

from typing import Any

from classroom.db.tables import Conversation, Message
from classroom.messages.model import Relation, may_write


def iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat()).replace("+00:00", "Z")


def person(user_id: str, known: dict[str, tuple[str, str]], role: str) -> dict[str, Any]:
    name, _ = known.get(user_id, (user_id, role))
    return {"id": user_id, "name": name, "role": role}


def message_view(
    message: Message, conv: Conversation, known: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """``text`` is plain text exactly as sent (trimmed): escape it wherever it is shown."""
    role = "tutor" if message.sender_id == conv.tutor_id else "student"
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "sender": person(message.sender_id, known, role),
        "kind": message.kind,
        "text": message.text,
        "session_id": message.session_id,
        "client_id": message.client_id,
        "created_at": iso(message.created_at),
    }


def conversation_view(
    conv: Conversation,
    known: dict[str, tuple[str, str]],
    relation: Relation | None,
    unread: int,
    last: Message | None,
) -> dict[str, Any]:
    return {
        "id": conv.id,
        "tutor": person(conv.tutor_id, known, "tutor"),
        "student": person(conv.student_id, known, "student"),
        "unread": unread,
        "can_write": may_write(relation),
        "last_message": None if last is None else message_view(last, conv, known),
        "created_at": iso(conv.created_at),
    }
