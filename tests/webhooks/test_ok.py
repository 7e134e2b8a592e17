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
    get_adapter,
)
from webhooks.ok import OkAdapter

Payload = Callable[[str, str], bytes]

PAGE = PageSecrets(
    platform="ok",
    key="pk-ok-9f3b0c7e2a51d8f46b",
    external_id="70000001234567",
    access_token="tkn1example:CQABPOJKAKEKEKEKE",
    staff_ids=frozenset({"user:561200000001"}),
    api_url="https://ok.test",
)
ok = OkAdapter()


def one(body: bytes, page: PageSecrets = PAGE) -> InboundEvent:
    events = ok.parse(page, body, RECEIVED)
    assert len(events) == 1
    return events[0]


def test_registry_knows_the_adapter() -> None:
    assert isinstance(get_adapter("ok"), OkAdapter)


def test_verify_accepts_anything_since_ok_signs_nothing(payload: Payload) -> None:
    ok.verify(PAGE, {}, payload("ok", "message"))
    ok.verify(PAGE, {"x-anything": "1"}, b"not even json")


def test_delivery_key_is_the_mid(payload: Payload) -> None:
    assert ok.delivery_key(payload("ok", "message")) == "mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f"
    system = payload("ok", "chat_system")
    assert ok.delivery_key(system).startswith("sha256:")
    assert ok.delivery_key(system) == ok.delivery_key(system)
    assert ok.delivery_key(system) != ok.delivery_key(system.replace(b"1760423100000", b"1"))
    with pytest.raises(Malformed):
        ok.delivery_key(b"[]")


def test_ack_is_an_empty_200(payload: Payload) -> None:
    assert ok.ack(PAGE, payload("ok", "message")) == Ack(body="", status_code=200)


def test_citizen_message(payload: Payload) -> None:
    assert one(payload("ok", "message")) == InboundEvent(
        kind=EventKind.citizen_message,
        source_key="ok:mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f",
        thread_key="ok:chat:C3f7a9b1e2d40",
        thread_kind=ThreadKind.message,
        author_id="user:577123456789",
        author_name="Людмила Соколова",
        text=(
            "Здравствуйте. Подскажите, куда обращаться по поводу неработающего "
            "фонаря на ул. Лесной, 8?"
        ),
        sent_at=datetime(2025, 10, 14, 6, 12, 33, 123000, tzinfo=UTC),
        reply_ref={"chat_id": "chat:C3f7a9b1e2d40", "mid": "mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f"},
        raw_type="MESSAGE_CREATED",
    )


def test_image_without_text(payload: Payload) -> None:
    event = one(payload("ok", "image"))
    assert event.text == ""
    assert event.attachments == (
        Attachment(type="image", url="https://i.mycdn.me/i?r=example-pothole"),
    )
    assert event.sent_at == datetime(2025, 10, 14, 6, 40, 5, 410000, tzinfo=UTC)


def test_explicit_message_created_type(payload: Payload) -> None:
    event = one(payload("ok", "message_created_typed"))
    assert event.kind is EventKind.citizen_message
    assert event.thread_key == "ok:chat:C3f7a9b1e2d40"


def test_staff_member_writing_is_a_page_reply(payload: Payload) -> None:
    data = json.loads(payload("ok", "message"))
    data["sender"] = {"user_id": "user:561200000001", "name": "Модератор группы"}
    assert one(json.dumps(data).encode()).kind is EventKind.page_reply


@pytest.mark.parametrize(
    ("name", "raw_type"), [("callback", "MESSAGE_CALLBACK"), ("chat_system", "CHAT_SYSTEM")]
)
def test_other_events_are_ignored(payload: Payload, name: str, raw_type: str) -> None:
    event = one(payload("ok", name))
    assert event.kind is EventKind.ignored
    assert event.raw_type == raw_type


def test_unknown_body_is_ignored_not_rejected() -> None:
    assert one(b'{"something": "new"}').kind is EventKind.ignored


def test_message_without_chat_is_malformed() -> None:
    body = json.dumps(
        {"webhookType": "MESSAGE_CREATED", "sender": {"user_id": "user:1"}, "message": {"mid": "m"}}
    ).encode()
    with pytest.raises(Malformed, match="chat_id"):
        ok.parse(PAGE, body, RECEIVED)


# --- sending -------------------------------------------------------------------------------


def reply_to(event: InboundEvent, text: str = "Обратитесь, пожалуйста, в ЕДДС: 112.") -> Reply:
    return Reply(id=9, text=text, reply_ref=event.reply_ref, thread_key=event.thread_key)


def test_reply_request(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json={"message_id": "mid:C3f7a9b1e2d40.18f2a3b4c5d7999", "success": True})
    published = ok.send_reply(client, PAGE, reply_to(one(payload("ok", "message"))))
    request = api.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/graph/me/messages/chat:C3f7a9b1e2d40"
    assert request.url.host == "ok.test"
    assert dict(request.url.params) == {"access_token": "tkn1example:CQABPOJKAKEKEKEKE"}
    assert request.headers["content-type"] == "application/json;charset=utf-8"
    assert api.json() == {
        "recipient": {"chat_id": "chat:C3f7a9b1e2d40"},
        "message": {"text": "Обратитесь, пожалуйста, в ЕДДС: 112."},
    }
    assert published.external_id == "mid:C3f7a9b1e2d40.18f2a3b4c5d7999"
    assert published.source_key == "ok:mid:C3f7a9b1e2d40.18f2a3b4c5d7999"
    assert published.sent_at is None  # OK's answer is undated: the caller records its clock


def test_reply_answer_without_an_id(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json={"success": True})
    published = ok.send_reply(client, PAGE, reply_to(one(payload("ok", "message"))))
    assert published.external_id == ""
    assert published.source_key == "ok:out:9"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            {"error_code": 102, "error_msg": "PARAM_SESSION_EXPIRED : Session expired"},
            "token_invalid",
        ),
        ({"error_code": 10, "error_msg": "PERMISSION_DENIED"}, "no_permission"),
        ({"error_code": 300, "error_msg": "NOT_FOUND : chat"}, "ok_300"),
        ({"success": False}, "ok_http_200"),
    ],
)
def test_permanent_errors(
    payload: Payload, api: Any, client: httpx.Client, answer: dict[str, Any], code: str
) -> None:
    api.reply(json=answer)
    with pytest.raises(PermanentError) as refused:
        ok.send_reply(client, PAGE, reply_to(one(payload("ok", "message"))))
    assert refused.value.code == code
    assert any("а" <= ch <= "я" for ch in refused.value.message_ru.lower())


def test_transient_errors(payload: Payload, api: Any, client: httpx.Client) -> None:
    reply = reply_to(one(payload("ok", "message")))
    api.reply(json={"error_code": 8, "error_msg": "FLOOD_BLOCKED"})
    api.reply(503, text="Service Unavailable", headers={"Retry-After": "30"})
    api.fail(httpx.ConnectTimeout("timed out"))
    with pytest.raises(TransientError):
        ok.send_reply(client, PAGE, reply)
    with pytest.raises(TransientError) as unavailable:
        ok.send_reply(client, PAGE, reply)
    assert unavailable.value.retry_after == 30.0
    with pytest.raises(TransientError):
        ok.send_reply(client, PAGE, reply)


def test_cannot_reply_without_the_group_token(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    page = PageSecrets(platform="ok", key="k", external_id="1")
    event = one(payload("ok", "message"))
    problem = ok.can_reply(page, event.reply_ref)
    assert problem is not None
    assert "ключ доступа" in problem
    assert ok.can_reply(PAGE, event.reply_ref) is None
    with pytest.raises(PermanentError):
        ok.send_reply(client, page, reply_to(event))
    assert api.requests == []
