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
    TransientError,
    Unauthentic,
    get_adapter,
)
from webhooks.max import MaxAdapter

Payload = Callable[[str, str], bytes]

PAGE = PageSecrets(
    platform="max",
    key="pk-max",
    external_id="-70011223344",
    secret="max_Secret-2025",
    access_token="max-bot-token-abc",
    staff_ids=frozenset({"40999000"}),
    api_url="https://max.test",
)
MID = "mid.00000000729ab3c10199e2a4f7c31d05"
CHAT_MID = "mid.0000000105a1b2c30199e2a500000011"
ASKED_MID = "mid.0000000105a1b2c30199e2a500000010"
POST_MID = "mid.0000000105a1b2c30199e2a4000000aa"
mx = MaxAdapter()


def one(body: bytes, page: PageSecrets = PAGE) -> InboundEvent:
    events = mx.parse(page, body, RECEIVED)
    assert len(events) == 1
    return events[0]


def test_registry_knows_the_adapter() -> None:
    assert isinstance(get_adapter("max"), MaxAdapter)


def test_verify_secret_header(payload: Payload) -> None:
    body = payload("max", "message_created_dialog")
    mx.verify(PAGE, {"x-max-bot-api-secret": "max_Secret-2025"}, body)
    for wrong in ({}, {"x-max-bot-api-secret": "max_Secret-2026"}, {"x-max-bot-api-secret": ""}):
        with pytest.raises(Unauthentic):
            mx.verify(PAGE, wrong, body)


def test_ack(payload: Payload) -> None:
    assert mx.ack(PAGE, payload("max", "bot_started")) == Ack(body="", status_code=200)


def test_delivery_keys_separate_creation_edit_and_removal(payload: Payload) -> None:
    assert mx.delivery_key(payload("max", "message_created_dialog")) == (
        f"message_created:{MID}:1760422353412"
    )
    assert (
        mx.delivery_key(payload("max", "message_edited")) == f"message_edited:{MID}:1760422953001"
    )
    assert mx.delivery_key(payload("max", "message_removed")) == (
        f"message_removed:{MID}:1760425361007"
    )
    assert mx.delivery_key(payload("max", "bot_started")) == (
        "bot_started:7718293401/40718293:1760422300000"
    )
    with pytest.raises(Malformed, match="update_type"):
        mx.delivery_key(b'{"timestamp": 1}')


def test_dialog_message(payload: Payload) -> None:
    assert one(payload("max", "message_created_dialog")) == InboundEvent(
        kind=EventKind.citizen_message,
        source_key=f"max:{MID}",
        thread_key="max:7718293401",
        thread_kind=ThreadKind.message,
        author_id="40718293",
        author_name="Ольга Петрова",
        text="Добрый день! Когда включат отопление в доме по ул. Мира, 21? В квартирах +16.",
        sent_at=datetime(2025, 10, 14, 6, 12, 33, 398000, tzinfo=UTC),
        attachments=(),
        reply_ref={"mid": MID, "user_id": "40718293"},
        raw_type="message_created",
    )


def test_edit_and_removal_point_at_the_same_message(payload: Payload) -> None:
    edit = one(payload("max", "message_edited"))
    assert edit.kind is EventKind.edit
    assert edit.source_key == f"max:{MID}"
    assert "корпус 2" in edit.text
    assert edit.sent_at == datetime(2025, 10, 14, 6, 22, 33, 1000, tzinfo=UTC)
    removed = one(payload("max", "message_removed"))
    assert removed.kind is EventKind.delete
    assert removed.source_key == f"max:{MID}"
    assert removed.thread_key == "max:7718293401"
    assert removed.author_id == "40718293"
    assert removed.sent_at == datetime(2025, 10, 14, 7, 2, 41, 7000, tzinfo=UTC)


def test_photo_without_text(payload: Payload) -> None:
    event = one(payload("max", "message_created_photo"))
    assert event.text == ""
    assert event.attachments == (
        Attachment(type="image", url="https://i.oneme.ru/i?r=example-radiator", id="9912345678"),
    )


def test_pure_forward_without_body(payload: Payload) -> None:
    event = one(payload("max", "message_created_forward"))
    assert event.kind is EventKind.citizen_message
    assert event.text == "Отопление в домах по ул. Мира будет подключено после 20 октября."
    assert event.source_key == "max:fwd:7718293401:1760423100190"
    assert event.reply_ref == {"user_id": "40718293"}  # nothing to attach a reply link to
    assert mx.delivery_key(payload("max", "message_created_forward")).startswith(
        "message_created:fwd:7718293401:"
    )


def test_group_chat_reply_is_threaded_under_the_answered_message(payload: Payload) -> None:
    event = one(payload("max", "message_created_chat_reply"))
    assert event.kind is EventKind.citizen_message
    assert event.thread_kind is ThreadKind.message  # a group chat is a conversation
    assert event.thread_key == f"max:-68012345678:{ASKED_MID}"
    assert event.reply_to_key == f"max:{ASKED_MID}"
    assert event.reply_ref == {"mid": CHAT_MID, "chat_id": "-68012345678"}


def test_staff_member_in_a_chat_is_a_page_reply(payload: Payload) -> None:
    event = one(payload("max", "message_created_chat_staff"))
    assert event.kind is EventKind.page_reply
    assert event.reply_to_key == f"max:{ASKED_MID}"


def test_bot_sender_is_a_page_reply(payload: Payload) -> None:
    data = json.loads(payload("max", "message_created_chat_reply"))
    data["message"]["sender"]["is_bot"] = True
    assert one(json.dumps(data).encode()).kind is EventKind.page_reply


def test_channel_post_without_sender_is_context(payload: Payload) -> None:
    event = one(payload("max", "channel_post"))
    assert event.kind is EventKind.context
    assert event.source_key == f"max:{POST_MID}"
    assert event.context_text == "Отопительный сезон в округе начинается 20 октября."
    assert event.permalink == "https://max.ru/c/-70011223344/AZnioAAAAAA"


def test_channel_comment(payload: Payload) -> None:
    event = one(payload("max", "comment_created"))
    assert event.kind is EventKind.citizen_message
    assert event.source_key == "max:mid.0000000105a1b2c30199e2a4000000c1"
    assert event.thread_key == f"max:post:{POST_MID}"
    assert event.thread_kind is ThreadKind.comment
    assert event.author_name == "Тимур"
    assert event.text == "А в частном секторе тоже 20-го?"
    assert event.reply_ref == {
        "post_id": POST_MID,
        "mid": "mid.0000000105a1b2c30199e2a4000000c1",
        "chat_id": "-70011223344",
    }


@pytest.mark.parametrize(
    "update_type", ["bot_started", "bot_stopped", "dialog_removed", "message_callback", "whatever"]
)
def test_other_updates_are_ignored(payload: Payload, update_type: str) -> None:
    data = json.loads(payload("max", "bot_started"))
    data["update_type"] = update_type
    event = one(json.dumps(data).encode())
    assert event.kind is EventKind.ignored
    assert event.raw_type == update_type


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "JSON"),
        (b'{"timestamp": 1}', "update_type"),
        (b'{"update_type": "message_removed", "timestamp": 1}', "message_id"),
        (
            b'{"update_type": "message_created", "message": {"body": {"text": "x"}}}',
            "mid",
        ),
        (b'{"update_type": "comment_created", "comment": {"body": {"text": "x"}}}', "post id"),
    ],
)
def test_malformed_updates(body: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        mx.parse(PAGE, body, RECEIVED)


# --- sending -------------------------------------------------------------------------------


def reply_to(event: InboundEvent, text: str = "Отопление включат 21 октября.") -> Reply:
    return Reply(id=5, text=text, reply_ref=event.reply_ref, thread_key=event.thread_key)


def sent(mid: str, timestamp: int = 1760426000000) -> dict[str, Any]:
    return {
        "message": {
            "sender": {"user_id": 91234567, "first_name": "Заречный", "is_bot": True},
            "recipient": {"chat_id": 7718293401, "chat_type": "dialog"},
            "timestamp": timestamp,
            "body": {"mid": mid, "seq": 1, "text": "…"},
        }
    }


def test_reply_in_a_dialog(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json=sent("mid.00000000729ab3c10199e2a4f7c31dff"))
    published = mx.send_reply(client, PAGE, reply_to(one(payload("max", "message_created_dialog"))))
    request = api.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://max.test/messages?user_id=40718293"
    assert request.headers["authorization"] == "max-bot-token-abc"
    assert api.json() == {
        "text": "Отопление включат 21 октября.",
        "notify": True,
        "link": {"type": "reply", "mid": MID},
    }
    assert published.source_key == "max:mid.00000000729ab3c10199e2a4f7c31dff"
    assert published.external_id == "mid.00000000729ab3c10199e2a4f7c31dff"
    assert published.sent_at == datetime(2025, 10, 14, 7, 13, 20, tzinfo=UTC)


def test_reply_in_a_group_chat(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json=sent("mid.x1"))
    mx.send_reply(client, PAGE, reply_to(one(payload("max", "message_created_chat_reply"))))
    assert str(api.requests[0].url) == "https://max.test/messages?chat_id=-68012345678"
    assert api.json()["link"] == {"type": "reply", "mid": CHAT_MID}


def test_reply_to_a_channel_comment(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json=sent("mid.c2"))
    mx.send_reply(client, PAGE, reply_to(one(payload("max", "comment_created"))))
    assert str(api.requests[0].url) == f"https://max.test/messages/{POST_MID}/comments"


def test_long_reply_is_split(payload: Payload, api: Any, client: httpx.Client) -> None:
    text = " ".join(["отопление"] * 900)  # ~9000 characters
    api.reply(json=sent("mid.p1"))
    api.reply(json=sent("mid.p2"))
    api.reply(json=sent("mid.p3"))
    published = mx.send_reply(
        client, PAGE, reply_to(one(payload("max", "message_created_dialog")), text)
    )
    bodies = [api.json(i) for i in range(3)]
    assert all(len(b["text"]) <= 4000 for b in bodies)
    assert " ".join(b["text"] for b in bodies) == text
    assert "link" in bodies[0]
    assert "link" not in bodies[1]
    assert published.source_key == "max:mid.p1"


@pytest.mark.parametrize("status", [429, 503, 500])
def test_overload_is_transient(
    payload: Payload, api: Any, client: httpx.Client, status: int
) -> None:
    api.reply(
        status,
        json={"code": "too.many.requests", "message": "Slow down"},
        headers={"Retry-After": "2"},
    )
    with pytest.raises(TransientError) as later:
        mx.send_reply(client, PAGE, reply_to(one(payload("max", "message_created_dialog"))))
    assert later.value.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "token_invalid"), (403, "bot_no_access"), (404, "not_found"), (400, "max_400")],
)
def test_permanent_errors(
    payload: Payload, api: Any, client: httpx.Client, status: int, code: str
) -> None:
    api.reply(status, json={"code": "proto.payload", "message": "chat.denied"})
    with pytest.raises(PermanentError) as refused:
        mx.send_reply(client, PAGE, reply_to(one(payload("max", "message_created_dialog"))))
    assert refused.value.code == code
    assert any("а" <= ch <= "я" for ch in refused.value.message_ru.lower())
    if status == 400:
        assert "chat.denied" in refused.value.message_ru


def test_network_error_is_transient(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.fail(httpx.ConnectError("no route to host"))
    with pytest.raises(TransientError):
        mx.send_reply(client, PAGE, reply_to(one(payload("max", "message_created_dialog"))))


def test_cannot_reply_without_a_token(payload: Payload, api: Any, client: httpx.Client) -> None:
    page = PageSecrets(platform="max", key="k", external_id="1", secret="s")
    event = one(payload("max", "message_created_dialog"))
    problem = mx.can_reply(page, event.reply_ref)
    assert problem is not None
    assert "токен" in problem
    assert mx.can_reply(PAGE, event.reply_ref) is None
    assert mx.can_reply(PAGE, {}) is not None
    with pytest.raises(PermanentError):
        mx.send_reply(client, page, reply_to(event))
    assert api.requests == []


def test_channel_message_is_a_comment(payload: Payload) -> None:
    data = json.loads(payload("max", "message_created_chat_reply"))
    data["message"]["recipient"]["chat_type"] = "channel"
    assert one(json.dumps(data).encode()).thread_kind is ThreadKind.comment


def test_removed_comment_is_found_by_its_id_whichever_update_says_so(payload: Payload) -> None:
    created = one(payload("max", "comment_created"))
    mid = "mid.0000000105a1b2c30199e2a4000000c1"
    bare = {"update_type": "comment_removed", "timestamp": 1760421900000, "comment_id": mid}
    for body in (
        bare,  # the least a removal can carry: no post, no comment object
        {**bare, "comment": {"recipient": {"post_id": POST_MID}, "body": {"mid": mid}}},
        {"update_type": "message_removed", "timestamp": 1760421900000, "message_id": mid},
    ):
        removed = one(json.dumps(body).encode())
        assert removed.kind is EventKind.delete
        assert removed.source_key == created.source_key
