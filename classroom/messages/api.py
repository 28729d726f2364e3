"""HTTP routes of Messages under ``/api/conversations``: parse, call one service method, answer."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from classroom.errors import InvalidPayload
from classroom.http import identity_of, json_response, read_json
from classroom.messages.service import MessageService

MESSAGES = web.AppKey("messages", MessageService)

UserId = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenIn(Body):
    with_: UserId = Field(alias="with")


class SendIn(Body):
    text: StrictStr = Field(max_length=20_000)  # cleaned, then at most 2000 (message_too_long)
    client_id: StrictStr | None = Field(default=None, max_length=64)
    session_id: StrictStr | None = Field(default=None, min_length=1, max_length=64)


class ReadIn(Body):
    up_to: StrictInt | None = Field(default=None, ge=0)


def _service(request: web.Request) -> MessageService:
    return request.app[MESSAGES]


def _conversation_id(request: web.Request) -> str:
    return request.match_info["conversation_id"]


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    assert value is not None
    if not value.isdigit() or len(value) > 18:
        raise InvalidPayload(f"{name}: a positive whole number.")
    return int(value)


async def list_conversations(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    limit = _query_int(request, "limit") or 100
    return json_response(await _service(request).list_conversations(identity, limit))


async def open_conversation(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, OpenIn)
    return json_response(await _service(request).open_conversation(identity, body.with_))


async def list_messages(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    result = await _service(request).list_messages(
        identity,
        _conversation_id(request),
        _query_int(request, "before"),
        _query_int(request, "limit"),
    )
    return json_response(result)


async def send_message(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, SendIn)
    result = await _service(request).send_message(
        identity, _conversation_id(request), body.text, body.client_id, body.session_id
    )
    return json_response(result, status=201)


async def mark_read(request: web.Request) -> web.Response:
    identity = await identity_of(request)
    body = await read_json(request, ReadIn)
    result = await _service(request).mark_read(identity, _conversation_id(request), body.up_to)
    return json_response(result)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/conversations", list_conversations)
    r.add_post("/api/conversations", open_conversation)
    r.add_get("/api/conversations/{conversation_id}/messages", list_messages)
    r.add_post("/api/conversations/{conversation_id}/messages", send_message)
    r.add_post("/api/conversations/{conversation_id}/read", mark_read)
