"""HTTP plumbing shared by every route: app keys, JSON errors, authentication, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from classroom.auth import Identity, TokenCodec
from classroom.errors import ClassroomError, InternalError, InvalidPayload, Unauthenticated
from classroom.metrics import Metrics
from classroom.users.directory import UserDirectory

log = logging.getLogger(__name__)

TOKENS = web.AppKey("tokens", TokenCodec)
USERS = web.AppKey("users", UserDirectory)
METRICS = web.AppKey("metrics", Metrics)
IDENTITY = web.RequestKey("identity", Identity)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def error_response(error: ClassroomError) -> web.Response:
    return json_response({"error": error.to_dict()}, status=error.status)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as JSON ``{"error": {"code", "message"}}`` with the right status."""
    try:
        return await handler(request)
    except ClassroomError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return json_response(
            {"error": {"code": code, "message": exc.reason or code}}, status=exc.status
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(InternalError())


def metrics_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics.http_latency.labels(request.method, name, str(status)).observe(
                time.perf_counter() - started
            )

    return middleware


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def identity_of(request: web.Request) -> Identity:
    """The caller, from ``Authorization: Bearer``; remembered in the users table. 401 otherwise."""
    cached = request.get(IDENTITY)
    if isinstance(cached, Identity):
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("Send 'Authorization: Bearer <token>' with a valid access token.")
    identity = request.app[TOKENS].decode(token)
    await request.app[USERS].remember(identity)
    request[IDENTITY] = identity
    return identity


PUBLIC_API_PATHS = frozenset({"/api/calendar.ics"})  # authenticates with its own calendar token


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every ``/api`` route needs an authenticated caller."""
    if (
        request.path.startswith("/api/")
        and request.method != "OPTIONS"
        and request.path not in PUBLIC_API_PATHS
    ):
        await identity_of(request)
    return await handler(request)


async def read_json[M: BaseModel](request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body into ``model``, or raise ``invalid_payload``."""
    try:
        raw = await request.read()
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise InvalidPayload("The request body is not valid JSON.") from None
    return validate(model, data)


def validate[M: BaseModel](model: type[M], data: object) -> M:
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
