"""The JSON shapes of sessions, invoices and reviews, as each caller may see them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from classroom.db.tables import Invoice, Review, SessionParticipant, SessionTransition
from classroom.db.tables import Session as SessionRow
from classroom.sessions import model, no_show
from classroom.sessions.ports import PresenceSnapshot
from classroom.sessions.store import Relation, iso, person


def session_summary(
    row: SessionRow,
    participants: Sequence[SessionParticipant],
    relation: Relation,
    known: dict[str, str],
    now: datetime,
    open_before_minutes: int,
    hard_cap_minutes: int,
    logging_deadline: datetime,
) -> dict[str, Any]:
    """What every list shows; the details add presence, attendance, money and history."""
    window = model.classroom_window(
        row.starts_at, row.duration_minutes, open_before_minutes, hard_cap_minutes
    )
    view = shared_summary(row, participants, known, now, window, logging_deadline)
    return for_relation(view, row, relation)


def classroom_open(row: SessionRow, window: model.ClassroomWindow, now: datetime) -> bool:
    return (
        window.is_open(now)
        and row.state in (model.State.ACCEPTED, model.State.IN_PROGRESS)
        and row.classroom_closed_at is None
    )


def for_relation(view: dict[str, Any], row: SessionRow, relation: Relation) -> dict[str, Any]:
    """``view`` (a ``shared_summary``) with what only some relations see: the tutor's notes."""
    if relation in ("tutor", "admin"):
        view["notes"] = row.notes
    return view


def shared_summary(
    row: SessionRow,
    participants: Sequence[SessionParticipant],
    known: dict[str, str],
    now: datetime,
    window: model.ClassroomWindow,
    logging_deadline: datetime,
) -> dict[str, Any]:
    """The summary as every relation sees it (``for_relation`` adds the rest)."""
    classroom: dict[str, Any] | None = None
    if row.mode == "online":
        classroom = {
            "opens_at": iso(window.opens_at),
            "closes_at": iso(window.closes_at),
            "open": classroom_open(row, window, now),
        }
    view: dict[str, Any] = {
        "id": row.id,
        "series_id": row.series_id,
        "tutor": person(row.tutor_id, known),
        "students": [
            {
                "id": p.student_id,
                "name": known.get(p.student_id, p.student_id),
                "acceptance": p.acceptance,
                "responded_at": iso(p.responded_at),
                "removed": p.removed,
            }
            for p in participants
        ],
        "state": row.state,
        "state_reason": row.state_reason,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(model.ends_at(row.starts_at, row.duration_minutes)),
        "duration_minutes": row.duration_minutes,
        "topic": row.topic,
        "mode": row.mode,
        "started_at": iso(row.started_at),
        "logged_minutes": row.logged_minutes,
        "recap": row.recap,
        "needs_review": row.needs_review,
        "completed_at": iso(row.completed_at),
        "completed_by": person(row.completed_by, known),
        "cancellation": (
            {
                "by": person(row.cancelled_by, known),
                "reason": row.cancel_reason,
                "late": bool(row.cancelled_late),
            }
            if row.state == model.State.CANCELLED
            else None
        ),
        "logging_deadline": iso(logging_deadline),
        "classroom": classroom,
        "created_at": iso(row.created_at),
    }
    return view


def presence_view(snapshot: PresenceSnapshot) -> tuple[list[dict[str, Any]], int]:
    return [p.to_dict() for p in snapshot.participants], snapshot.version


def attendance_view(
    summary: model.Attendance, known: dict[str, str], suggested: int
) -> dict[str, Any]:
    return {
        "participants": [
            {
                "user_id": user_id,
                "name": known.get(user_id, user_id),
                "role": summary.roles[user_id],
                "seconds": seconds,
            }
            for user_id, seconds in summary.seconds.items()
        ],
        "overlap_seconds": summary.overlap_seconds,
        "suggested_minutes": suggested,
    }


def invoice_view(invoice: Invoice, known: dict[str, str], row: SessionRow | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": invoice.id,
        "session_id": invoice.session_id,
        "student": person(invoice.student_id, known),
        "tutor": person(invoice.tutor_id, known),
        "minutes": invoice.minutes,
        "rate_cents": invoice.rate_cents,
        "amount_cents": invoice.amount_cents,
        "fee_cents": invoice.fee_cents,
        "tutor_earning_cents": invoice.amount_cents - invoice.fee_cents,
        "kind": invoice.kind,  # lesson | no_show_fee
        "created_at": iso(invoice.created_at),
    }
    if row is not None:
        view["session"] = {"starts_at": iso(row.starts_at), "topic": row.topic}
    return view


def review_view(review: Review, known: dict[str, str]) -> dict[str, Any]:
    return {
        "id": review.id,
        "session_id": review.session_id,
        "student": person(review.student_id, known),
        "tutor": person(review.tutor_id, known),
        "rating": review.rating,
        "text": review.text,
        "created_at": iso(review.created_at),
    }


def history_view(items: Sequence[SessionTransition], known: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "at": iso(t.at),
            "by": person(t.actor_id, known),
            "from": t.from_state,
            "to": t.to_state,
            "detail": t.detail,
        }
        for t in items
    ]


def no_show_view(
    situation: no_show.Situation,
    relation: Relation,
    viewer_id: str,
    prompted: Sequence[str],
    fee_percent: float = 0,
) -> dict[str, Any] | None:
    """When the no-show actions open, who has not come (tutor and admin), and which of them the
    caller may use right now; None for in-person sessions."""
    s = situation
    if s.mode != "online":
        return None
    tutor, sees_absent = relation == "tutor", relation in ("tutor", "admin")
    return {
        "prompt_available_at": iso(s.timing.prompt_at),
        "end_available_at": iso(s.timing.end_at),
        "absent": list(s.absent) if sees_absent else [],
        "prompted": list(prompted) if sees_absent else [],
        "fee_percent": fee_percent,
        "can_send_prompt": tutor and no_show.passes(lambda: no_show.check_prompt(s)),
        "can_end": tutor and no_show.passes(lambda: no_show.check_student_no_show(s)),
        "can_report_tutor_no_show": relation == "student"
        and no_show.passes(lambda: no_show.check_tutor_no_show(s, viewer_id)),
    }
