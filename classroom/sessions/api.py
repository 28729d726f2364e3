"""HTTP routes of the sessions service under ``/api``: parse, call one service method, answer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from classroom.errors import InvalidPayload
from classroom.http import identity_of, json_response, read_json
from classroom.sessions import model
from classroom.sessions.service import NewSession, Recurrence, SessionService

SESSIONS = web.AppKey("sessions", SessionService)


def parse_instant(value: object, field: str = "value") -> datetime:
    """An ISO 8601 date-time with a UTC offset (``Z`` or ``+01:00``), as a UTC datetime."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidPayload(f"{field}: an ISO 8601 date-time with an offset, as a string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(f"{field}: {value!r} is not an ISO 8601 date-time.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidPayload(
            f"{field}: {value!r} has no UTC offset; write e.g. 2030-03-01T17:00:00+01:00 or …Z."
        )
    return parsed.astimezone(UTC)


def _instant(value: object) -> datetime:
    try:
        return parse_instant(value)
    except InvalidPayload as exc:
        raise ValueError(exc.message.removeprefix("value: ")) from None


def _day(value: object) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("a date as YYYY-MM-DD") from None


Instant = Annotated[datetime, BeforeValidator(_instant)]
Day = Annotated[date, BeforeValidator(_day)]
UserId = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecurrenceIn(Body):
    frequency: Literal["weekly", "biweekly"]
    count: StrictInt | None = Field(default=None, ge=1)
    until: Day | None = None


class CreateIn(Body):
    student_ids: list[UserId] = Field(min_length=1, max_length=10)
    starts_at: Instant
    duration_minutes: StrictInt
    topic: StrictStr | None = Field(default=None, max_length=model.TOPIC_MAX_CHARS)
    notes: StrictStr | None = Field(default=None, max_length=model.TEXT_MAX_CHARS)
    mode: Literal["online", "in_person"] = "online"
    recurrence: RecurrenceIn | None = None


class RescheduleIn(Body):
    starts_at: Instant
    duration_minutes: StrictInt | None = None


class CancelIn(Body):
    reason: StrictStr | None = Field(default=None, max_length=model.TEXT_MAX_CHARS)


class CompleteIn(Body):
    minutes: StrictInt
    recap: StrictStr = Field(max_length=20_000)  # trimmed, then 150..5000 (service)


class ReviewIn(Body):
    rating: StrictInt = Field(ge=1, le=5)
    text: StrictStr | None = Field(default=None, max_length=model.TEXT_MAX_CHARS)


class WindowIn(Body):
    weekday: StrictInt = Field(ge=0, le=6)
    start: StrictStr = Field(max_length=5)
    end: StrictStr = Field(max_length=5)


class ProfileIn(Body):
    hourly_rate_cents: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    timezone: StrictStr = Field(default="UTC", min_length=1, max_length=64)
    availability: list[WindowIn] = Field(default_factory=list, max_length=50)


class Empty(Body):
    pass


class NoShowIn(Body):
    student_ids: list[UserId] | None = Field(default=None, min_length=1, max_length=10)


class RemoveIn(Body):
    reason: StrictStr | None = Field(default=None, max_length=model.TEXT_MAX_CHARS)


def _service(request: web.Request) -> SessionService:
    return request.app[SESSIONS]


def _query_instant(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > 6 and value[-6] == " ":  # an unencoded "+01:00" arrives as " 01:00"
        value = value[:-6] + "+" + value[-5:]
    return parse_instant(value, name)


def _query_int(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value in (None, ""):
        return default
    assert value is not None
    if not value.isdigit() or len(value) > 6:
        raise InvalidPayload(f"{name}: a positive whole number.")
    return int(value)


def _session_id(request: web.Request) -> str:
    return request.match_info["session_id"]


async def create_session(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, CreateIn)
    recurrence = None
    if body.recurrence is not None:
        r = body.recurrence
        recurrence = Recurrence(frequency=r.frequency, count=r.count, until=r.until)
    new = NewSession(
        student_ids=body.student_ids,
        starts_at=body.starts_at,
        duration_minutes=body.duration_minutes,
        topic=body.topic,
        notes=body.notes,
        mode=body.mode,
        recurrence=recurrence,
    )
    return json_response(await _service(request).create_sessions(identity, new), status=201)


async def list_sessions(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    result = await _service(request).list_sessions(
        identity,
        _query_instant(request, "from"),
        _query_instant(request, "to"),
        request.query.get("state") or None,
        _query_int(request, "limit", 200),
    )
    return json_response(result)


async def get_session(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    return json_response(await _service(request).get_session(identity, _session_id(request)))


async def session_history(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    return json_response(await _service(request).history(identity, _session_id(request)))


async def accept(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    await read_json(request, Empty)
    return json_response(await _service(request).accept(identity, _session_id(request)))


async def decline(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    await read_json(request, Empty)
    return json_response(await _service(request).decline(identity, _session_id(request)))


async def reschedule(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, RescheduleIn)
    result = await _service(request).reschedule(
        identity, _session_id(request), body.starts_at, body.duration_minutes
    )
    return json_response(result)


async def cancel(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, CancelIn)
    result = await _service(request).cancel(identity, _session_id(request), body.reason)
    return json_response(result)


async def complete(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, CompleteIn)
    result = await _service(request).complete_session(
        identity, _session_id(request), body.minutes, body.recap
    )
    return json_response(result)


async def session_invoice(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    return json_response(await _service(request).session_invoices(identity, _session_id(request)))


async def review(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, ReviewIn)
    result = await _service(request).review_session(
        identity, _session_id(request), body.rating, body.text
    )
    return json_response(result, status=201)


async def send_no_show_prompt(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, NoShowIn)
    result = await _service(request).send_no_show_prompt(
        identity, _session_id(request), body.student_ids
    )
    return json_response(result)


async def end_as_no_show(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, NoShowIn)
    result = await _service(request).end_as_no_show(
        identity, _session_id(request), body.student_ids
    )
    return json_response(result)


async def report_tutor_no_show(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    await read_json(request, Empty)
    result = await _service(request).report_tutor_no_show(identity, _session_id(request))
    return json_response(result)


async def remove_participant(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, RemoveIn)
    student_id = request.match_info["student_id"]
    if len(student_id) > 64:
        raise InvalidPayload("student id: at most 64 characters.")
    result = await _service(request).remove_participant(
        identity, _session_id(request), student_id, body.reason
    )
    return json_response(result)


async def get_my_profile(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    return json_response(await _service(request).get_profile(identity))


async def put_my_profile(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, ProfileIn)
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    if "availability" in changes:
        changes["availability"] = [w.model_dump() for w in body.availability]
    return json_response(await _service(request).update_profile(identity, changes))


async def get_tutor(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    tutor_id = request.match_info["tutor_id"]
    if len(tutor_id) > 64:
        raise InvalidPayload("tutor id: at most 64 characters.")
    return json_response(await _service(request).tutor_profile(identity, tutor_id))


async def my_balance(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    return json_response(
        await _service(request).balance(identity, _query_int(request, "limit", 50))
    )


async def list_invoices(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    result = await _service(request).list_invoices(
        identity,
        _query_instant(request, "from"),
        _query_instant(request, "to"),
        _query_int(request, "limit", 200),
    )
    return json_response(result)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/sessions", create_session)
    r.add_get("/api/sessions", list_sessions)
    r.add_get("/api/sessions/{session_id}", get_session)
    r.add_get("/api/sessions/{session_id}/history", session_history)
    r.add_post("/api/sessions/{session_id}/accept", accept)
    r.add_post("/api/sessions/{session_id}/decline", decline)
    r.add_post("/api/sessions/{session_id}/reschedule", reschedule)
    r.add_post("/api/sessions/{session_id}/cancel", cancel)
    r.add_post("/api/sessions/{session_id}/complete", complete)
    r.add_get("/api/sessions/{session_id}/invoice", session_invoice)
    r.add_post("/api/sessions/{session_id}/review", review)
    r.add_post("/api/sessions/{session_id}/no-show/prompt", send_no_show_prompt)
    r.add_post("/api/sessions/{session_id}/no-show", end_as_no_show)
    r.add_post("/api/sessions/{session_id}/tutor-no-show", report_tutor_no_show)
    r.add_post("/api/sessions/{session_id}/participants/{student_id}/remove", remove_participant)
    r.add_get("/api/tutors/me", get_my_profile)
    r.add_put("/api/tutors/me", put_my_profile)
    r.add_get("/api/tutors/{tutor_id}", get_tutor)
    r.add_get("/api/me/balance", my_balance)
    r.add_get("/api/invoices", list_invoices)
