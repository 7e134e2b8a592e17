from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.webhooks.conftest import RECEIVED
from webhooks import (
    Ack,
    Attachment,
    EventKind,
    InboundEvent,
    Malformed,
    PageSecrets,
    PermanentError,
    Reply,
    ThreadKind,
    Unauthentic,
    get_adapter,
)
from webhooks.generic import GenericAdapter, sign

Payload = Callable[[str, str], bytes]

PAGE = PageSecrets(platform="generic", key="pk-gen", external_id="crm", secret="gen-secret-42")
gen = GenericAdapter()


def signed(body: bytes, secret: str = "gen-secret-42") -> dict[str, str]:
    return {"x-otklik-signature": sign(secret, body), "content-type": "application/json"}


def test_registry_knows_the_adapter() -> None:
    assert isinstance(get_adapter("generic"), GenericAdapter)


def test_sign_is_hex_hmac_sha256() -> None:
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_verify_signature(payload: Payload) -> None:
    body = payload("generic", "message")
    gen.verify(PAGE, signed(body), body)
    gen.verify(PAGE, {"x-otklik-signature": sign("gen-secret-42", body).upper()}, body)
    bad_headers: list[dict[str, str]] = [
        {},
        signed(body, "other-secret"),
        {"x-otklik-signature": sign("gen-secret-42", body).removeprefix("sha256=")},
        {"x-otklik-signature": "sha1=" + sign("gen-secret-42", body)[7:]},
        {"x-otklik-signature": "sha256="},
    ]
    for headers in bad_headers:
        with pytest.raises(Unauthentic):
            gen.verify(PAGE, headers, body)
    with pytest.raises(Unauthentic):
        gen.verify(PAGE, signed(body), body + b" ")
    no_secret = PageSecrets(platform="generic", key="k", external_id="x")
    with pytest.raises(Unauthentic):
        gen.verify(no_secret, signed(body), body)


def test_delivery_key_and_ack(payload: Payload) -> None:
    body = payload("generic", "message")
    assert gen.delivery_key(body) == "crm-104233"
    assert gen.ack(PAGE, body) == Ack(body='{"ok":true}', media_type="application/json")
    with pytest.raises(Malformed, match="id"):
        gen.delivery_key(b'{"thread_id": "t"}')


def test_citizen_message(payload: Payload) -> None:
    assert gen.parse(PAGE, payload("generic", "message"), RECEIVED) == [
        InboundEvent(
            kind=EventKind.citizen_message,
            source_key="crm-104233",
            thread_key="crm-thread-5521",
            thread_kind=ThreadKind.message,
            author_id="citizen-8812",
            author_name="Елена Смирнова",
            text="Прошу сообщить, когда будет восстановлено освещение в сквере на ул. Победы.",
            sent_at=datetime(2025, 10, 14, 6, 12, 33, tzinfo=UTC),
            attachments=(
                Attachment(type="photo", url="https://crm.example.ru/files/104233/1.jpg"),
            ),
            permalink="https://crm.example.ru/requests/5521",
            raw_type="message",
        )
    ]


def test_page_comment_replying_to_another(payload: Payload) -> None:
    [event] = gen.parse(PAGE, payload("generic", "comment_from_page"), RECEIVED)
    assert event.kind is EventKind.page_reply
    assert event.thread_kind is ThreadKind.comment
    assert event.reply_to_key == "site-comment-75"
    assert event.sent_at == datetime(2025, 10, 14, 10, 0, tzinfo=UTC)
    assert event.reply_ref == {}


def test_numeric_ids_are_accepted_as_strings(payload: Payload) -> None:
    data = json.loads(payload("generic", "message"))
    data.update(id=104233, thread_id=5521, author={"id": 8812})
    [event] = gen.parse(PAGE, json.dumps(data).encode(), RECEIVED)
    assert (event.source_key, event.thread_key, event.author_id) == ("104233", "5521", "8812")
    assert event.author_name == ""


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: without(d, "id"), "id"),
        (lambda d: {**d, "id": ""}, "id"),
        (lambda d: without(d, "thread_id"), "thread_id"),
        (lambda d: {**d, "kind": "post"}, "kind"),
        (lambda d: without(d, "author"), "author"),
        (lambda d: {**d, "author": {"name": "Елена"}}, "author.id"),
        (lambda d: {**d, "author": {"id": "c", "name": 5}}, "author.name"),
        (lambda d: without(d, "text"), "text"),
        (lambda d: {**d, "text": None}, "text"),
        (lambda d: without(d, "sent_at"), "sent_at"),
        (lambda d: {**d, "sent_at": "2025-10-14T09:12:33"}, "offset"),
        (lambda d: {**d, "sent_at": "14.10.2025 09:12"}, "sent_at"),
        (lambda d: {**d, "sent_at": 1760422353}, "sent_at"),
        (lambda d: {**d, "from_page": "no"}, "from_page"),
        (lambda d: {**d, "reply_to": ""}, "reply_to"),
        (lambda d: {**d, "attachments": {"type": "photo"}}, "attachments"),
        (lambda d: {**d, "attachments": [{"url": "https://x"}]}, r"attachments\[0\].type"),
        (lambda d: {**d, "attachments": [{"type": "photo", "url": 1}]}, r"attachments\[0\].url"),
        (lambda d: {**d, "permalink": 5}, "permalink"),
    ],
)
def test_invalid_fields_are_named(
    payload: Payload, change: Callable[[dict[str, Any]], dict[str, Any]], field: str
) -> None:
    body = json.dumps(change(json.loads(payload("generic", "message")))).encode()
    with pytest.raises(Malformed, match=field):
        gen.parse(PAGE, body, RECEIVED)


def test_replies_cannot_be_published(payload: Payload, api: Any, client: httpx.Client) -> None:
    [event] = gen.parse(PAGE, payload("generic", "message"), RECEIVED)
    explanation = gen.can_reply(PAGE, event.reply_ref)
    assert explanation is not None
    assert "исходной системе" in explanation
    reply = Reply(id=1, text="Ответ", reply_ref=event.reply_ref, thread_key=event.thread_key)
    with pytest.raises(PermanentError) as refused:
        gen.send_reply(client, PAGE, reply)
    assert refused.value.code == "unsupported"
    assert refused.value.message_ru == explanation
    assert api.requests == []
