"""Conventions of the JSON API: list envelopes and opaque cursors."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import Invalid

T = TypeVar("T")

# Row ids are INTEGER columns: a larger number can name no row, and SQLite cannot even
# bind one past 2**63, so such ids are refused as invalid input.
MAX_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def examples(*examples: dict[str, Any]) -> ConfigDict:
    """Examples of a request or response body for the OpenAPI schema."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Listing(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Нет или неверный токен"},
    403: {"model": ErrorResponse, "description": "Недостаточно прав"},
    404: {"model": ErrorResponse, "description": "Не найдено (или вне области видимости)"},
    422: {"model": ErrorResponse, "description": "Неверные данные"},
}


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("Неверный cursor", code="invalid_cursor") from exc


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit должен быть от 1 до {MAX_LIMIT}", code="invalid_limit")
    return limit


def id_cursor(cursor: str | None) -> int:
    value = decode_cursor(cursor)
    if value is None:
        return 0
    if not isinstance(value, int):
        raise Invalid("Неверный cursor", code="invalid_cursor")
    return value


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body of the JSON API and the webhooks: {"error": {"code", "message"}}."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )
