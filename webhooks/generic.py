"""The generic source: any system that posts signed JSON in Otklik's own shape (docs/api.md).

Body: {"id", "thread_id", "kind": "comment|message", "author": {"id", "name"}, "text",
"sent_at": ISO 8601 with offset, "from_page": false, optional "reply_to", "attachments":
[{"type", "url"}], "permalink"}, signed with X-Otklik-Signature: sha256=<hex HMAC-SHA256>.
Replies cannot be published back: the operator answers in the source system.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from webhooks.base import (
    Ack,
    Malformed,
    PageSecrets,
    PermanentError,
    Published,
    Reply,
    Unauthentic,
    ignored,
    parse_json,
)
from webhooks.events import Attachment, EventKind, InboundEvent, ThreadKind

SIGNATURE_HEADER = "x-otklik-signature"
_PREFIX = "sha256="
UNSUPPORTED_RU = (
    "Этот источник подключён через общий вебхук и не принимает ответы через Отклик: "
    "ответьте в исходной системе."
)


def sign(secret: str, body: bytes) -> str:
    """The X-Otklik-Signature value for a body: "sha256=<hex HMAC-SHA256>"."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


class GenericAdapter:
    name = "generic"

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        given = headers.get(SIGNATURE_HEADER, "").strip()
        if not page.secret or not given.lower().startswith(_PREFIX):
            raise Unauthentic("X-Otklik-Signature is missing or not sha256=<hex>")
        expected = sign(page.secret, body)
        if not hmac.compare_digest(expected.encode(), given.lower().encode()):
            raise Unauthentic("X-Otklik-Signature does not match the body")

    def delivery_key(self, body: bytes) -> str:
        return _required_id(parse_json(body), "id")

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        return Ack(body='{"ok":true}', media_type="application/json")

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        data = parse_json(body)
        source_key = _required_id(data, "id")
        if data.get("kind") == "test":
            # A signed ping (Otklik's «send a test event», or an integrator's check).
            return [ignored("test", f"generic:test:{source_key}", received_at)]
        thread_key = _required_id(data, "thread_id")
        kind = data.get("kind")
        if kind not in ("comment", "message"):
            raise Malformed('kind must be "comment" or "message"')
        author = data.get("author")
        if not isinstance(author, dict):
            raise Malformed("author must be an object with id and name")
        author_id = _required_id(author, "id", "author.id")
        name = author.get("name", "")
        if not isinstance(name, str):
            raise Malformed("author.name must be a string")
        text = data.get("text")
        if not isinstance(text, str):
            raise Malformed("text must be a string (it may be empty)")
        from_page = data.get("from_page", False)
        if not isinstance(from_page, bool):
            raise Malformed("from_page must be true or false")
        reply_to = data.get("reply_to")
        if reply_to is not None and not _is_id(reply_to):
            raise Malformed("reply_to must be a non-empty string")
        permalink = data.get("permalink")
        if permalink is not None and not isinstance(permalink, str):
            raise Malformed("permalink must be a string")
        return [
            InboundEvent(
                kind=EventKind.page_reply if from_page else EventKind.citizen_message,
                source_key=source_key,
                thread_key=thread_key,
                thread_kind=ThreadKind(kind),
                author_id=author_id,
                author_name=name,
                text=text,
                sent_at=_sent_at(data.get("sent_at")),
                attachments=_attachments(data.get("attachments", [])),
                reply_to_key=str(reply_to) if reply_to is not None else None,
                permalink=permalink or None,
                raw_type=kind,
            )
        ]

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        return UNSUPPORTED_RU

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        raise PermanentError("unsupported", UNSUPPORTED_RU)


def _is_id(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int) and not isinstance(value, bool)


def _required_id(data: dict[str, Any], key: str, label: str | None = None) -> str:
    value = data.get(key)
    if not _is_id(value):
        raise Malformed(f"{label or key} is required and must be a non-empty string")
    return str(value)


def _sent_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise Malformed("sent_at is required: an ISO 8601 time with an offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"sent_at is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Malformed("sent_at must include a UTC offset, e.g. 2025-10-14T09:12:33+03:00")
    return moment.astimezone(UTC)


def _attachments(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise Malformed("attachments must be a list")
    result: list[Attachment] = []
    for number, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not item["type"]:
            raise Malformed(f"attachments[{number}].type is required")
        url = item.get("url")
        if url is not None and not isinstance(url, str):
            raise Malformed(f"attachments[{number}].url must be a string")
        result.append(Attachment(type=item["type"], url=url or None))
    return tuple(result)
