"""The database schema. Every change here comes with an Alembic migration in ``migrations/``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (stored naive UTC) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(entity: type[Base]) -> Table:
    """The Core table of a mapped class (Core statements skip the ORM's per-statement work)."""
    found = entity.__table__
    assert isinstance(found, Table)
    return found


class User(Base):
    """Upserted from the claims of every authenticated request; the platform owns users."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ParentLink(Base):
    __tablename__ = "parent_links"
    parent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    student_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TutorProfile(Base):
    __tablename__ = "tutor_profiles"
    tutor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hourly_rate_cents: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # [{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}]
    availability: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Session(Base):
    """One booking. Recurring requests create one row per occurrence sharing ``series_id``."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tutor_id: Mapped[str] = mapped_column(String(64), index=True)
    series_id: Mapped[str | None] = mapped_column(String(36), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)  # private to the tutor
    mode: Mapped[str] = mapped_column(String(16), default="online")  # online | in_person
    state: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    state_reason: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_late: Mapped[bool | None] = mapped_column(Boolean)
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    logged_minutes: Mapped[int | None] = mapped_column(Integer)
    recap: Mapped[str | None] = mapped_column(Text)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_leave_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    classroom_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SessionParticipant(Base):
    """A student booked on a session, with their acceptance."""

    __tablename__ = "session_participants"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    student_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    acceptance: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|accepted|declined
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionTransition(Base):
    """Every state change: who, when, from, to."""

    __tablename__ = "session_transitions"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attendance(Base):
    """One stay of one user in a session's classroom: joined, and (once over) left with a reason."""

    __tablename__ = "attendance"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leave_reason: Mapped[str | None] = mapped_column(
        String(16)
    )  # clean | timeout | closed | removed

    __table_args__ = (Index("ix_attendance_session_user", "session_id", "user_id"),)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    tutor_id: Mapped[str] = mapped_column(String(64))
    minutes: Mapped[int] = mapped_column(Integer)
    rate_cents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    # lesson (a completed session) | no_show_fee (a no-show with CLASSROOM_NO_SHOW_FEE_PERCENT)
    kind: Mapped[str] = mapped_column(String(16), default="lesson", server_default="lesson")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "student_id", name="uq_invoices_session_student"),
    )


class LedgerEntry(Base):
    """Every movement of money. A balance is the sum of an account's entries."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(80), index=True)  # student:<id> tutor:<id> platform
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(32))  # charge | earning | platform_fee
    amount_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    student_id: Mapped[str] = mapped_column(String(64))
    tutor_id: Mapped[str] = mapped_column(String(64), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "student_id", name="uq_reviews_session_student"),
    )


class OutboxMessage(Base):
    """One email or webhook, written in the transaction that caused it; delivered by the worker.

    ``status`` is pending until delivered (sent), given up (failed) or withdrawn (cancelled). A
    pending row with ``leased_until`` in the future is in flight: a worker claimed it.
    """

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # email | webhook
    topic: Mapped[str] = mapped_column(String(48))  # session.requested, reminder, participant.left
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    session_id: Mapped[str | None] = mapped_column(String(36))
    subject_id: Mapped[str | None] = mapped_column(String(64))  # the user the message is about
    recipient: Mapped[str | None] = mapped_column(String(320))  # email address; NULL for webhooks
    sequence: Mapped[int | None] = mapped_column(Integer)  # per-session order of webhooks
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    deliver_after: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        UniqueConstraint("session_id", "kind", "sequence", name="uq_outbox_session_kind_sequence"),
    )


class OutboxCounter(Base):
    """Per-session counters: the last webhook sequence number and the calendar event's SEQUENCE."""

    __tablename__ = "outbox_counters"
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_sequence: Mapped[int] = mapped_column(Integer, default=0)
    calendar_sequence: Mapped[int] = mapped_column(Integer, default=0)


class Conversation(Base):
    """The messages between one tutor and one student (their linked parents may read them)."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tutor_id: Mapped[str] = mapped_column(String(64), index=True)
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("tutor_id", "student_id", name="uq_conversations_pair"),)


class Message(Base):
    """One plain-text message. Ids increase in the order messages were sent in a conversation.

    ``session_id`` is the session it was sent from (the classroom's chat panel, the no-show
    prompt); ``client_id`` makes a retried send idempotent."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text | prompt
    text: Mapped[str] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), index=True
    )
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_messages_conversation_id", "conversation_id", "id"),
        UniqueConstraint("conversation_id", "sender_id", "client_id", name="uq_messages_client_id"),
    )


class ConversationRead(Base):
    """How far one reader has read a conversation: messages after ``last_read_id`` are unread."""

    __tablename__ = "conversation_reads"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    last_read_id: Mapped[int] = mapped_column(BigInteger, default=0)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
