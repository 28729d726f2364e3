"""Wire schemas of the ``/classroom`` namespace: what each event's payload must look like."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from classroom.errors import ClassroomError, InvalidPayload
from classroom.http import describe_validation_error

SessionId = Field(min_length=1, max_length=64)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class JoinPayload(_Payload):
    session_id: str = SessionId


class WatchPayload(_Payload):
    session_id: str = SessionId


class LogTimePayload(_Payload):
    minutes: int = Field(strict=True)
    recap: str = Field(max_length=5000)


class EmptyPayload(_Payload):
    pass


def parse[M: BaseModel](model: type[M], data: object) -> M:
    if data is None and not model.model_fields:
        data = {}
    if not isinstance(data, dict):
        raise InvalidPayload("The event's payload must be an object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(describe_validation_error(exc)) from None


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def refusal(error: ClassroomError) -> dict[str, Any]:
    return {"ok": False, "error": error.to_dict()}
