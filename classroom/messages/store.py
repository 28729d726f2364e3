"""Reading and writing conversations and messages with SQLAlchemy."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.tables import (
    Conversation,
    ConversationRead,
    Message,
    ParentLink,
    SessionParticipant,
    User,
    new_id,
)
from classroom.db.tables import Session as SessionRow


def _insert(tx: AsyncSession) -> Any:
    return postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert


async def conversation(
    tx: AsyncSession, conversation_id: str, *, for_update: bool = False
) -> Conversation | None:
    if not conversation_id or len(conversation_id) > 36:
        return None
    query = select(Conversation).where(Conversation.id == conversation_id)
    if for_update:
        query = query.with_for_update()
    return (await tx.execute(query)).scalar_one_or_none()


async def pair(tx: AsyncSession, tutor_id: str, student_id: str) -> Conversation | None:
    return (
        await tx.execute(
            select(Conversation).where(
                Conversation.tutor_id == tutor_id, Conversation.student_id == student_id
            )
        )
    ).scalar_one_or_none()


async def open_pair(
    tx: AsyncSession, tutor_id: str, student_id: str, now: datetime
) -> Conversation:
    """The pair's conversation, created if needed (a concurrent creator is harmless)."""
    await tx.execute(
        _insert(tx)(Conversation)
        .values(id=new_id(), tutor_id=tutor_id, student_id=student_id, created_at=now)
        .on_conflict_do_nothing(index_elements=[Conversation.tutor_id, Conversation.student_id])
    )
    found = await pair(tx, tutor_id, student_id)
    assert found is not None
    return found


async def share_a_session(tx: AsyncSession, tutor_id: str, student_id: str) -> bool:
    """The tutor has booked the student at least once (whatever became of the booking)."""
    found = await tx.scalar(
        select(
            exists().where(
                SessionRow.tutor_id == tutor_id,
                SessionParticipant.session_id == SessionRow.id,
                SessionParticipant.student_id == student_id,
            )
        )
    )
    return bool(found)


async def session_people(tx: AsyncSession, session_id: str) -> tuple[str, list[str]] | None:
    """(tutor_id, booked students still on it) of a session, or None when it does not exist."""
    tutor_id = await tx.scalar(select(SessionRow.tutor_id).where(SessionRow.id == session_id))
    if tutor_id is None:
        return None
    students = await tx.execute(
        select(SessionParticipant.student_id)
        .where(
            SessionParticipant.session_id == session_id,
            SessionParticipant.removed.is_(False),
        )
        .order_by(SessionParticipant.student_id)
    )
    return tutor_id, list(students.scalars())


async def children_of(tx: AsyncSession, parent_id: str) -> frozenset[str]:
    rows = await tx.execute(select(ParentLink.student_id).where(ParentLink.parent_id == parent_id))
    return frozenset(rows.scalars())


async def parents_of(tx: AsyncSession, student_id: str) -> list[str]:
    rows = await tx.execute(
        select(ParentLink.parent_id)
        .where(ParentLink.student_id == student_id)
        .order_by(ParentLink.parent_id)
    )
    return list(rows.scalars())


async def people(tx: AsyncSession, user_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{user_id: (name, role)} of the users the server knows."""
    ids = sorted({u for u in user_ids if u})
    if not ids:
        return {}
    rows = await tx.execute(select(User.id, User.name, User.role).where(User.id.in_(ids)))
    return {user_id: (name, role) for user_id, name, role in rows}


def visible(user_id: str, role: str, children: Iterable[str]) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the conversations a user may read (None: all of them)."""
    if role == "admin":
        return None
    if role == "tutor":
        return Conversation.tutor_id == user_id
    if role == "student":
        return Conversation.student_id == user_id
    return Conversation.student_id.in_(sorted(children))


async def conversations(
    tx: AsyncSession, where: ColumnElement[bool] | None, limit: int
) -> list[Conversation]:
    """Latest activity first; conversations without messages last."""
    query = select(Conversation)
    if where is not None:
        query = query.where(where)
    query = query.order_by(
        Conversation.last_message_id.desc().nulls_last(), Conversation.created_at.desc()
    ).limit(limit)
    return list((await tx.execute(query)).scalars())


async def conversation_ids(tx: AsyncSession, where: ColumnElement[bool] | None) -> list[str]:
    """Every conversation the caller may see (for totals over more than one page)."""
    query = select(Conversation.id)
    if where is not None:
        query = query.where(where)
    return list((await tx.execute(query)).scalars())


async def unread_counts(
    tx: AsyncSession, conversation_ids: Sequence[str], reader_id: str
) -> dict[str, int]:
    """Per conversation: messages from others after the reader's marker."""
    if not conversation_ids:
        return {}
    marker = func.coalesce(ConversationRead.last_read_id, 0)
    rows = await tx.execute(
        select(Message.conversation_id, func.count(Message.id))
        .outerjoin(
            ConversationRead,
            and_(
                ConversationRead.conversation_id == Message.conversation_id,
                ConversationRead.user_id == reader_id,
            ),
        )
        .where(
            Message.conversation_id.in_(list(conversation_ids)),
            Message.sender_id != reader_id,
            Message.id > marker,
        )
        .group_by(Message.conversation_id)
    )
    return {conversation_id: int(count) for conversation_id, count in rows}


async def messages_by_id(tx: AsyncSession, ids: Sequence[int]) -> dict[int, Message]:
    if not ids:
        return {}
    rows = await tx.execute(select(Message).where(Message.id.in_(list(ids))))
    return {m.id: m for m in rows.scalars()}


async def page(
    tx: AsyncSession, conversation_id: str, before: int | None, limit: int
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages before ``before`` (all when None), oldest first, and whether
    older ones remain."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list((await tx.execute(query.order_by(Message.id.desc()).limit(limit + 1))).scalars())
    more = len(rows) > limit
    return list(reversed(rows[:limit])), more


async def by_client_id(
    tx: AsyncSession, conversation_id: str, sender_id: str, client_id: str
) -> Message | None:
    return (
        await tx.execute(
            select(Message).where(
                Message.conversation_id == conversation_id,
                Message.sender_id == sender_id,
                Message.client_id == client_id,
            )
        )
    ).scalar_one_or_none()


async def last_read(tx: AsyncSession, conversation_id: str, user_id: str) -> int:
    found = await tx.scalar(
        select(ConversationRead.last_read_id).where(
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.user_id == user_id,
        )
    )
    return int(found or 0)


async def mark_read(
    tx: AsyncSession, conversation_id: str, user_id: str, up_to: int, now: datetime
) -> None:
    """Move the reader's marker forward to ``up_to`` (never back)."""
    await tx.execute(
        _insert(tx)(ConversationRead)
        .values(conversation_id=conversation_id, user_id=user_id, last_read_id=0, read_at=now)
        .on_conflict_do_nothing(
            index_elements=[ConversationRead.conversation_id, ConversationRead.user_id]
        )
    )
    await tx.execute(
        update(ConversationRead)
        .where(
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.user_id == user_id,
            ConversationRead.last_read_id < up_to,
        )
        .values(last_read_id=up_to, read_at=now)
        .execution_options(synchronize_session=False)
    )


async def session_messages(
    tx: AsyncSession, session_id: str, student_ids: Collection[str] | None, limit: int
) -> list[tuple[Message, Conversation]]:
    """Messages sent from a session (its chat panel, its no-show prompt), oldest first; only
    those of ``student_ids``' conversations unless None."""
    query = (
        select(Message, Conversation)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.session_id == session_id)
    )
    if student_ids is not None:
        query = query.where(Conversation.student_id.in_(sorted(student_ids)))
    rows = await tx.execute(query.order_by(Message.id).limit(limit))
    return [(message, conv) for message, conv in rows]
