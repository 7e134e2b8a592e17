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
from webhooks.base import utf16_len
from webhooks.telegram import TelegramAdapter, bot_id
from webhooks.telegram_api import send_message

Payload = Callable[[str, str], bytes]

PAGE = PageSecrets(
    platform="telegram",
    key="pk-tg",
    external_id="-1001987654321",
    secret="tg-secret_Token-1",
    access_token="7012345678:AAH-example-token",
    staff_ids=frozenset({"402233445"}),
    api_url="https://tg.test",
)
SEND_URL = "https://tg.test/bot7012345678:AAH-example-token/sendMessage"
GROUP = "-1001876543210"
POST_TEXT = "С 20 октября начинается ямочный ремонт дорог в микрорайоне Южный."
tg = TelegramAdapter()


def one(body: bytes, page: PageSecrets = PAGE) -> InboundEvent:
    events = tg.parse(page, body, RECEIVED)
    assert len(events) == 1
    return events[0]


def headers(secret: str) -> dict[str, str]:
    return {"x-telegram-bot-api-secret-token": secret, "content-type": "application/json"}


# --- verify / ack / delivery key -----------------------------------------------------------


def test_registry_knows_the_adapter() -> None:
    assert isinstance(get_adapter("telegram"), TelegramAdapter)


def test_verify_secret_header(payload: Payload) -> None:
    body = payload("telegram", "comment")
    tg.verify(PAGE, headers("tg-secret_Token-1"), body)
    for wrong in ({}, headers("tg-secret_Token-2"), headers(""), headers("TG-SECRET_TOKEN-1")):
        with pytest.raises(Unauthentic):
            tg.verify(PAGE, wrong, body)
    with pytest.raises(Unauthentic):
        tg.verify(PageSecrets(platform="telegram", key="k", external_id="1"), headers(""), body)


def test_delivery_key_and_ack(payload: Payload) -> None:
    body = payload("telegram", "comment")
    assert tg.delivery_key(body) == "804512377"
    assert tg.ack(PAGE, body) == Ack(body="", media_type="text/plain", status_code=200)
    with pytest.raises(Malformed, match="update_id"):
        tg.delivery_key(b'{"message": {}}')


def test_bot_id_is_the_token_prefix() -> None:
    assert bot_id(PAGE) == "7012345678"
    assert bot_id(PageSecrets(platform="telegram", key="k", external_id="1")) == ""


# --- channel comments ----------------------------------------------------------------------


def test_citizen_comment_under_a_channel_post(payload: Payload) -> None:
    assert one(payload("telegram", "comment")) == InboundEvent(
        kind=EventKind.citizen_message,
        source_key=f"tg:{GROUP}:20578",
        thread_key=f"tg:{GROUP}:20577",
        thread_kind=ThreadKind.comment,
        author_id="518273645",
        author_name="Анна Кузнецова",
        text="А улицу Садовую в этом году сделают? Возле школы №3 просто кошмар.",
        sent_at=datetime.fromtimestamp(1760424005, UTC),
        attachments=(),
        reply_to_key=None,
        permalink="https://t.me/zarechny_admin/3481?comment=20578",
        reply_ref={"chat_id": GROUP, "message_id": "20578"},
        raw_type="message",
        context_text=POST_TEXT,
    )


def test_automatic_forward_is_the_thread_root_context(payload: Payload) -> None:
    event = one(payload("telegram", "automatic_forward"))
    assert event.kind is EventKind.context
    assert event.source_key == event.thread_key == f"tg:{GROUP}:20577"
    assert event.context_text == POST_TEXT
    assert event.author_id == "-1001987654321"
    assert event.author_name == "Администрация Заречного округа"


def test_channel_post_and_its_edit_are_context(payload: Payload) -> None:
    post = one(payload("telegram", "channel_post"))
    assert post.kind is EventKind.context
    assert post.source_key == "tg:-1001987654321:3481"
    assert post.permalink == "https://t.me/zarechny_admin/3481"
    edit = one(payload("telegram", "edited_channel_post"))
    assert edit.kind is EventKind.edit
    assert edit.source_key == post.source_key
    assert edit.sent_at == datetime.fromtimestamp(1760425100, UTC)
    assert edit.text.endswith("до 15 ноября.")


def test_answer_written_as_the_channel_is_a_page_reply(payload: Payload) -> None:
    event = one(payload("telegram", "channel_reply"))
    assert event.kind is EventKind.page_reply
    assert event.reply_to_key == f"tg:{GROUP}:20578"
    assert event.thread_key == f"tg:{GROUP}:20577"
    assert event.author_id == "-1001987654321"
    assert event.permalink == "https://t.me/c/1876543210/20590?thread=20577"


def test_anonymous_group_admin_is_a_page_reply(payload: Payload) -> None:
    event = one(payload("telegram", "anonymous_admin"))
    assert event.kind is EventKind.page_reply
    assert event.author_name == "Пресс-служба"
    assert event.reply_to_key == f"tg:{GROUP}:20578"


def test_staff_account_is_a_page_reply(payload: Payload) -> None:
    body = payload("telegram", "staff_reply")
    assert one(body).kind is EventKind.page_reply
    no_staff = PageSecrets(platform="telegram", key="k", external_id="-1001987654321")
    assert one(body, no_staff).kind is EventKind.citizen_message


def test_comment_replying_to_another_comment(payload: Payload) -> None:
    event = one(payload("telegram", "comment_reply_to_comment"))
    assert event.kind is EventKind.citizen_message
    assert event.thread_key == f"tg:{GROUP}:20577"
    assert event.reply_to_key == f"tg:{GROUP}:20578"
    assert event.context_text == ""


def test_document_with_caption(payload: Payload) -> None:
    event = one(payload("telegram", "comment_document"))
    assert event.text == "Прикладываю коллективное обращение жителей дома 12."
    assert event.attachments == (Attachment(type="document", id="BQACAgIAAxkBAAIBYGZdoc"),)
    assert event.context_text == POST_TEXT


def test_forum_topic_message_keeps_the_topic_for_the_answer(payload: Payload) -> None:
    event = one(payload("telegram", "forum_topic"))
    assert event.thread_key == "tg:-1001555444333:480"
    assert event.reply_to_key is None  # the topic's service message is not a real message
    assert event.reply_ref == {
        "chat_id": "-1001555444333",
        "message_id": "512",
        "message_thread_id": "480",
    }
    assert event.permalink == "https://t.me/zarechny_voprosy/512?thread=480"


# --- private chats -------------------------------------------------------------------------


def test_private_photo_without_text(payload: Payload) -> None:
    event = one(payload("telegram", "private_photo"))
    assert event.kind is EventKind.citizen_message
    assert event.source_key == "tg:690112233:88"
    assert event.thread_key == "tg:690112233"
    assert event.thread_kind is ThreadKind.message
    assert event.text == ""
    assert event.attachments == (Attachment(type="photo", id="AgACAgIAAxkBAAIBWGZexample2"),)
    assert event.permalink is None
    assert event.author_name == "Павел"


def test_private_edit_updates_the_same_message(payload: Payload) -> None:
    new = one(payload("telegram", "private_text"))
    edit = one(payload("telegram", "edited_message"))
    assert new.kind is EventKind.citizen_message
    assert edit.kind is EventKind.edit
    assert edit.source_key == new.source_key == "tg:690112233:89"
    assert edit.sent_at == datetime.fromtimestamp(1760434390, UTC)


def test_voice_and_sticker(payload: Payload) -> None:
    voice = one(payload("telegram", "private_voice"))
    assert voice.attachments == (Attachment(type="voice", id="AwACAgIAAxkBAAIBXGZvoice"),)
    assert voice.text == ""
    sticker = one(payload("telegram", "private_sticker"))
    assert sticker.text == "👍"
    assert sticker.attachments == (Attachment(type="sticker", id="CAACAgIAAxkBAAIBXWZsticker"),)


@pytest.mark.parametrize(
    ("name", "raw_type"),
    [
        ("private_start", "message"),
        ("new_chat_members", "message"),
        ("message_reaction", "message_reaction"),
        ("my_chat_member", "my_chat_member"),
    ],
)
def test_irrelevant_updates_are_recorded_as_ignored(
    payload: Payload, name: str, raw_type: str
) -> None:
    event = one(payload("telegram", name))
    assert event.kind is EventKind.ignored
    assert event.raw_type == raw_type
    assert event.source_key
    if raw_type != "message":  # updates other than messages are dated by their delivery
        assert event.sent_at == RECEIVED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON"),
        (b'{"message": {"message_id": 1}}', "update_id"),
        (b'{"update_id": 1, "message": "hi"}', "not an object"),
        (b'{"update_id": 1, "message": {"message_id": 5, "text": "x"}}', "chat.id"),
    ],
)
def test_malformed_updates(body: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        tg.parse(PAGE, body, RECEIVED)


# --- sending -------------------------------------------------------------------------------


def reply_to(event: InboundEvent, text: str = "Ответ", reply_id: int = 9) -> Reply:
    return Reply(id=reply_id, text=text, reply_ref=event.reply_ref, thread_key=event.thread_key)


def sent(message_id: int, chat: dict[str, Any], date: int = 1760440000) -> dict[str, Any]:
    return {"ok": True, "result": {"message_id": message_id, "chat": chat, "date": date}}


GROUP_CHAT = {"id": -1001876543210, "title": "Заречный округ — обсуждение", "type": "supergroup"}
PRIVATE_CHAT = {"id": 690112233, "first_name": "Павел", "type": "private"}


def test_reply_to_a_comment(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json=sent(20601, GROUP_CHAT))
    question = one(payload("telegram", "comment"))
    published = tg.send_reply(client, PAGE, reply_to(question, "Анна, в плане на 2026 год."))
    request = api.requests[0]
    assert request.method == "POST"
    assert str(request.url) == SEND_URL
    assert api.json() == {
        "chat_id": -1001876543210,
        "text": "Анна, в плане на 2026 год.",
        # A deleted comment must not get an orphaned public answer.
        "reply_parameters": {"message_id": 20578, "allow_sending_without_reply": False},
    }
    assert published.external_id == "20601"
    assert published.source_key == f"tg:{GROUP}:20601"
    assert published.sent_at == datetime.fromtimestamp(1760440000, UTC)
    assert published.permalink == "https://t.me/c/1876543210/20601"


def test_reply_in_a_private_chat(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(json=sent(95, PRIVATE_CHAT))
    published = tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "private_photo"))))
    assert api.json()["chat_id"] == 690112233
    assert api.json()["reply_parameters"] == {"message_id": 88, "allow_sending_without_reply": True}
    assert published.source_key == "tg:690112233:95"
    assert published.permalink is None


def test_reply_in_a_forum_topic_names_the_topic(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    api.reply(json=sent(530, {"id": -1001555444333, "type": "supergroup", "is_forum": True}))
    tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "forum_topic"))))
    assert api.json()["message_thread_id"] == 480


def test_long_reply_is_split_and_continues_in_the_thread(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    paragraphs = [f"Абзац {n}: " + "слово " * 120 for n in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 4096
    api.reply(json=sent(20601, GROUP_CHAT))
    api.reply(json=sent(20602, GROUP_CHAT))
    published = tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "comment")), text))
    first, second = api.json(0), api.json(1)
    assert first["reply_parameters"] == {"message_id": 20578, "allow_sending_without_reply": False}
    assert second["reply_parameters"] == {"message_id": 20601, "allow_sending_without_reply": True}
    assert len(first["text"]) <= 4096
    assert first["text"].endswith("слово")  # cut at a paragraph boundary
    assert second["text"].startswith("Абзац")
    assert first["text"] + "\n\n" + second["text"] == text
    assert published.external_id == "20601"


def test_split_counts_utf16_units(payload: Payload, api: Any, client: httpx.Client) -> None:
    text = "🙂" * 3000  # 6000 UTF-16 code units, no spaces to cut at
    api.reply(json=sent(101, PRIVATE_CHAT))
    api.reply(json=sent(102, PRIVATE_CHAT))
    tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "private_photo")), text))
    parts = [api.json(i)["text"] for i in range(2)]
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == text


def test_rate_limit_is_transient_with_retry_after(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    api.reply(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 17",
            "parameters": {"retry_after": 17},
        },
    )
    with pytest.raises(TransientError) as later:
        tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "comment"))))
    assert later.value.retry_after == 17.0


@pytest.mark.parametrize(
    ("status", "description", "code"),
    [
        (400, "Bad Request: message to be replied not found", "reply_target_missing"),
        (403, "Forbidden: bot was blocked by the user", "citizen_blocked"),
        (403, "Forbidden: bot was kicked from the supergroup chat", "bot_no_access"),
        (400, "Bad Request: chat not found", "bot_no_access"),
        (401, "Unauthorized", "token_invalid"),
        (400, "Bad Request: message text is empty", "telegram_400"),
    ],
)
def test_permanent_errors(
    payload: Payload,
    api: Any,
    client: httpx.Client,
    status: int,
    description: str,
    code: str,
) -> None:
    api.reply(status, json={"ok": False, "error_code": status, "description": description})
    with pytest.raises(PermanentError) as refused:
        tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "comment"))))
    assert refused.value.code == code
    assert any("а" <= ch <= "я" for ch in refused.value.message_ru.lower())


def test_deleted_question_is_explained(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(
        400,
        json={
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message to be replied not found",
        },
    )
    with pytest.raises(PermanentError) as refused:
        tg.send_reply(client, PAGE, reply_to(one(payload("telegram", "comment"))))
    assert "удалено" in refused.value.message_ru


def test_failure_of_a_later_part_says_what_was_published(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    api.reply(json=sent(101, PRIVATE_CHAT))
    api.reply(
        403,
        json={
            "ok": False,
            "error_code": 403,
            "description": "Forbidden: bot was blocked by the user",
        },
    )
    with pytest.raises(PermanentError) as refused:
        tg.send_reply(
            client, PAGE, reply_to(one(payload("telegram", "private_photo")), "x " * 3000)
        )
    assert "Первые части ответа (1) уже опубликованы" in refused.value.message_ru


def test_network_and_server_errors_are_transient(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    reply = reply_to(one(payload("telegram", "comment")))
    api.fail(httpx.ReadTimeout("timed out"))
    api.reply(502, text="Bad Gateway")
    for _ in range(2):
        with pytest.raises(TransientError):
            tg.send_reply(client, PAGE, reply)


def test_cannot_reply_without_a_token(payload: Payload, api: Any, client: httpx.Client) -> None:
    page = PageSecrets(platform="telegram", key="k", external_id="-1001987654321", secret="s")
    question = one(payload("telegram", "comment"))
    problem = tg.can_reply(page, question.reply_ref)
    assert problem is not None
    assert "токен" in problem
    assert tg.can_reply(PAGE, question.reply_ref) is None
    assert tg.can_reply(PAGE, {}) is not None
    with pytest.raises(PermanentError):
        tg.send_reply(client, page, reply_to(question))
    assert api.requests == []


def test_reply_ref_is_all_strings(payload: Payload) -> None:
    for name in ("comment", "forum_topic", "private_photo", "channel_post"):
        ref = one(payload("telegram", name)).reply_ref
        assert all(isinstance(v, str) for v in ref.values()), json.dumps(dict(ref))


# --- a plain message (the app's alert bot) ---------------------------------------------------


def test_send_message_sends_one_plain_message(api: Any, client: httpx.Client) -> None:
    api.reply(json=sent(7, PRIVATE_CHAT))
    message = send_message(
        client, "https://tg.test/", "123:alert", "424242", "Срок ответа истёк", link_preview=False
    )
    assert str(api.requests[0].url) == "https://tg.test/bot123:alert/sendMessage"
    assert api.json() == {
        "chat_id": 424242,
        "text": "Срок ответа истёк",
        "disable_web_page_preview": True,
    }
    assert message["message_id"] == 7


def test_send_message_failures_are_transient_or_permanent(api: Any, client: httpx.Client) -> None:
    api.reply(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
    with pytest.raises(PermanentError) as refused:
        send_message(client, "https://tg.test", "123:bad", "424242", "текст")
    assert refused.value.code == "token_invalid"
    api.reply(502, text="Bad Gateway")
    with pytest.raises(TransientError):
        send_message(client, "https://tg.test", "123:alert", "424242", "текст")
