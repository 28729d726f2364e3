"""The rules of Messages, as pure functions (standard library and the error tree only).

A conversation belongs to one tutor and one student. Both write; the student's linked parents and
support (admins) read. Messages are plain text: trimmed, line breaks kept, other control
characters dropped, 1 to 2000 characters. Whoever shows a message escapes it (emails do; a
browser sets ``textContent``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal

from classroom.errors import Forbidden, InvalidPayload, MessageTooLong

MAX_TEXT_CHARS = 2000
PAGE_DEFAULT = 50
PAGE_MAX = 200
LIST_MAX = 200
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Relation = Literal["tutor", "student", "parent", "admin"]
Kind = Literal["text", "prompt"]  # prompt: the prepared "Are you joining?" of a no-show

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # keeps tab (\x09) and newline (\x0a)


def clean_text(text: object) -> str:
    """The text as stored: line endings as ``\\n``, control characters dropped, trimmed."""
    if not isinstance(text, str):
        raise InvalidPayload("text: must be a string.")
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise InvalidPayload("text: must not be empty.")
    if len(text) > MAX_TEXT_CHARS:
        raise MessageTooLong(length=len(text), max_length=MAX_TEXT_CHARS)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload("text: is not valid Unicode.") from None
    return text


def check_client_id(client_id: object) -> str | None:
    """A client's id for one send (letters, digits, ``-``, ``_``; 1-64): a retry with the same
    id answers the message already sent instead of sending it twice."""
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.match(client_id):
        raise InvalidPayload("client_id: 1 to 64 letters, digits, '-' or '_'.")
    return client_id


def relation_to(
    user_id: str, role: str, children: Collection[str], tutor_id: str, student_id: str
) -> Relation | None:
    """How a user relates to the conversation of ``tutor_id`` and ``student_id`` (None: not at
    all, and the conversation is invisible to them)."""
    if role == "admin":
        return "admin"
    if role == "tutor" and user_id == tutor_id:
        return "tutor"
    if role == "student" and user_id == student_id:
        return "student"
    if role == "parent" and student_id in children:
        return "parent"
    return None


def may_write(relation: Relation | None) -> bool:
    return relation in ("tutor", "student")


def check_may_write(relation: Relation | None) -> None:
    if not may_write(relation):
        raise Forbidden("Only the tutor and the student write in their conversation.")


def counterpart(sender_id: str, tutor_id: str, student_id: str) -> str:
    """Who a message from ``sender_id`` is for."""
    return student_id if sender_id == tutor_id else tutor_id


def pair_for(role: str, user_id: str, other_id: str) -> tuple[str, str]:
    """(tutor_id, student_id) of a conversation a tutor or a student opens with ``other_id``."""
    if other_id == user_id:
        raise InvalidPayload("with: a conversation is with someone else.")
    if role == "tutor":
        return user_id, other_id
    if role == "student":
        return other_id, user_id
    raise Forbidden("Conversations are opened by a tutor or a student.")


def page_limit(limit: int | None) -> int:
    if limit is None:
        return PAGE_DEFAULT
    return max(1, min(limit, PAGE_MAX))


def unread(last_read_id: int, message_ids_from_others: Collection[int]) -> int:
    """Messages from others after the reader's marker."""
    return sum(1 for message_id in message_ids_from_others if message_id > last_read_id)


def prompt_text(student_name: str) -> str:
    """The prepared message of *Send "Are you joining?"*."""
    first = student_name.split()[0] if student_name.split() else student_name
    return f"Hi {first}, are you joining? I'm waiting for you in the online classroom."
