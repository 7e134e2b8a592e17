"""The adapter protocol shared by every platform, its error types and small payload helpers."""

from __future__ import annotations

import functools
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import httpx

from webhooks.events import EventKind, InboundEvent, ThreadKind


@dataclass(frozen=True, slots=True)
class PageSecrets:
    """What the app knows about one connected page, decrypted."""

    platform: str
    key: str
    external_id: str
    secret: str | None = None
    confirmation_code: str | None = None
    access_token: str | None = None
    # VK: a page admin's user token, needed for board/photo/video/market comments.
    user_token: str | None = None
    staff_ids: frozenset[str] = frozenset()
    api_url: str = ""  # platform API base URL from settings; "" means the real one


class Unauthentic(Exception):
    """The delivery failed the authenticity check (-> 403)."""


class Malformed(Exception):
    """The delivery cannot be understood (-> 400); the message is shown to the caller."""


@dataclass(frozen=True, slots=True)
class Ack:
    body: str = "ok"
    media_type: str = "text/plain"
    status_code: int = 200
    # False for a handshake (VK confirmation): answered, but not stored as an event.
    store: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    id: int  # outbox item id; idempotency keys (VK guid, random_id) derive from it
    text: str
    reply_ref: Mapping[str, str]  # InboundEvent.reply_ref of the message being answered
    thread_key: str


@dataclass(frozen=True, slots=True)
class Published:
    external_id: str
    # The key the platform's echo event of this reply will carry, so the app can match it.
    source_key: str
    # When the platform says it published the reply; None when its answer carries no time
    # (VK, OK): the caller then records its own clock.
    sent_at: datetime | None
    permalink: str | None = None


class TransientError(Exception):
    """Worth retrying later: network error, 5xx, rate limits."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after)
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class PermanentError(Exception):
    """Retrying will not help; message_ru tells the operator what happened and what to do."""

    def __init__(self, code: str, message_ru: str) -> None:
        super().__init__(code, message_ru)
        self.code = code
        self.message_ru = message_ru

    def __str__(self) -> str:
        return f"{self.code}: {self.message_ru}"


@runtime_checkable
class PlatformAdapter(Protocol):
    name: str

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        """Raise Unauthentic unless the delivery comes from the platform; headers are lower-case."""
        ...

    def delivery_key(self, body: bytes) -> str:
        """Platform delivery id used for deduplication; raises Malformed."""
        ...

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        """What to answer the platform."""
        ...

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        """Normalised events; raises Malformed, never raises for unknown types.

        Times come from the payload; `received_at` (when the delivery was received and
        stored, UTC-aware) stands in for what the platform does not date (deletions, some
        edits), so a retry or a replay yields the same events as the first attempt.
        """
        ...

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        """Publish the reply; raises TransientError or PermanentError."""
        ...

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        """None if a reply is possible, else a Russian explanation for the operator."""
        ...


# --- payload helpers -------------------------------------------------------------------------


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body; raises Malformed with a clear message.

    Verifying, acknowledging and keying one delivery each look at its body: it is
    decoded once (the result is shared, so callers must not modify it).
    """
    return _parse_json(body)


@functools.lru_cache(maxsize=8)
def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        # Nesting past the interpreter's limit: no platform sends such a body, and
        # letting the error through would answer 500 (the platform retries forever).
        raise Malformed("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise Malformed(f"body must be a JSON object, got {type(data).__name__}")
    if _UNSTORABLE_ESCAPE.search(body):
        fixed: dict[str, Any] = _storable(data)
        return fixed
    return data


# JSON escapes that decode to what no database column of ours can hold as text: lone
# UTF-16 surrogates (not UTF-8 at all) and NUL (PostgreSQL refuses it in text, SQLite
# keeps it: the two databases would disagree). Looked for in the raw body first, so
# ordinary deliveries pay one scan and no walk.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)")


def _storable(value: Any) -> Any:
    """The value with surrogate pairs joined, lone surrogates as U+FFFD and NUL dropped."""
    if isinstance(value, str):
        fixed = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.replace("\x00", "")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: object) -> int | None:
    """An integer from a JSON number or a numeric string; None otherwise (bools excluded)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def id_str(value: object) -> str:
    """A platform id as a string ("" when absent); ids may arrive as numbers or strings."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | str):
        return str(value)
    return ""


def utc_from_seconds(value: object) -> datetime | None:
    number = as_int(value)
    if number is None:
        return None
    return datetime.fromtimestamp(number, UTC)


def utc_from_millis(value: object) -> datetime | None:
    number = as_int(value)
    if number is None:
        return None
    # Integer arithmetic: number / 1000 as a float would lose exact milliseconds.
    seconds, millis = divmod(number, 1000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)


def secrets_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing or empty expected secret never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def normalize_staff(page: PageSecrets) -> frozenset[str]:
    return frozenset(s.strip() for s in page.staff_ids if s.strip())


def ignored(
    raw_type: str, source_key: str, sent_at: datetime, *, author_id: str = ""
) -> InboundEvent:
    """An event that is recorded but means nothing for the inbox."""
    return InboundEvent(
        kind=EventKind.ignored,
        source_key=source_key,
        thread_key="",
        thread_kind=ThreadKind.message,
        author_id=author_id,
        author_name="",
        text="",
        sent_at=sent_at,
        raw_type=raw_type,
    )


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts message length in."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Split a long text into parts of at most `limit` (by `length`), preferring paragraph,
    line and word boundaries. Whitespace at the cut is dropped; nothing else is lost."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text
    while length(rest) > limit:
        # Largest prefix that fits (binary search keeps this linear-ish for UTF-16 counting).
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if length(rest[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        window = rest[:lo]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator)
            if position > lo // 2:
                cut = position
                break
        if cut == -1:
            cut = lo
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


def response_json(response: httpx.Response, platform: str) -> Any:
    """Decode an API answer; an undecodable body is a transient failure (proxy error page)."""
    try:
        return response.json()
    except ValueError:
        raise TransientError(
            f"{platform}: HTTP {response.status_code} with a non-JSON body"
        ) from None


def retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def post(client: httpx.Client, platform: str, url: str, **kwargs: Any) -> httpx.Response:
    """POST through the shared client; network failures become TransientError."""
    try:
        return client.post(url, **kwargs)
    except httpx.TransportError as exc:
        raise TransientError(f"{platform}: {type(exc).__name__}: {exc}") from exc


def api_base(page: PageSecrets, default: str) -> str:
    return (page.api_url or default).rstrip("/")
