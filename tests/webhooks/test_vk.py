from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
)
from webhooks.vk import VkAdapter
from webhooks.vk_api import random_id

Payload = Callable[[str, str], bytes]

PAGE = PageSecrets(
    platform="vk",
    key="pk-vk",
    external_id="218734591",
    secret="Zr7qL2vN9xKw",
    confirmation_code="d8a1f3c2",
    access_token="vk1.a.community-token",
    user_token="vk1.a.admin-user-token",
    staff_ids=frozenset({"377001122"}),
    api_url="https://vk.test",
)
vk = VkAdapter()


def one(page: PageSecrets, body: bytes) -> InboundEvent:
    events = vk.parse(page, body, RECEIVED)
    assert len(events) == 1
    return events[0]


def with_changes(body: bytes, **changes: object) -> bytes:
    data = json.loads(body)
    data.update(changes)
    return json.dumps(data).encode()


# --- verify / ack / delivery key -----------------------------------------------------------


def test_verify_accepts_matching_secret_and_group(payload: Payload) -> None:
    vk.verify(PAGE, {}, payload("vk", "wall_reply_new"))


@pytest.mark.parametrize(
    "changes",
    [
        {"secret": "Zr7qL2vN9xKx"},
        {"secret": ""},
        {"secret": None},
        {"secret": 12345},
        {"group_id": 218734592},
        {"group_id": None},
    ],
)
def test_verify_rejects_wrong_secret_or_group(payload: Payload, changes: dict[str, object]) -> None:
    with pytest.raises(Unauthentic):
        vk.verify(PAGE, {}, with_changes(payload("vk", "wall_reply_new"), **changes))


def test_verify_rejects_everything_when_page_has_no_secret(payload: Payload) -> None:
    page = PageSecrets(platform="vk", key="k", external_id="218734591")
    with pytest.raises(Unauthentic):
        vk.verify(page, {}, payload("vk", "wall_reply_new"))


def test_verify_rejects_non_json_as_malformed() -> None:
    with pytest.raises(Malformed):
        vk.verify(PAGE, {}, b"type=confirmation")


def test_confirmation_without_secret_is_answered_with_the_code(payload: Payload) -> None:
    body = payload("vk", "confirmation")
    vk.verify(PAGE, {}, body)
    assert vk.ack(PAGE, body) == Ack(body="d8a1f3c2", media_type="text/plain", store=False)
    assert vk.parse(PAGE, body, RECEIVED) == []
    assert vk.delivery_key(body) == "confirmation:218734591"


def test_confirmation_for_another_group_or_with_wrong_secret_is_rejected(payload: Payload) -> None:
    body = payload("vk", "confirmation")
    with pytest.raises(Unauthentic):
        vk.verify(PAGE, {}, with_changes(body, group_id=1))
    with pytest.raises(Unauthentic):
        vk.verify(PAGE, {}, with_changes(body, secret="guess"))


def test_confirmation_without_configured_code_is_malformed(payload: Payload) -> None:
    page = PageSecrets(platform="vk", key="k", external_id="218734591", secret="s")
    with pytest.raises(Malformed, match="confirmation"):
        vk.ack(page, payload("vk", "confirmation"))


def test_events_are_acknowledged_with_plain_ok(payload: Payload) -> None:
    assert vk.ack(PAGE, payload("vk", "message_new")) == Ack(body="ok", media_type="text/plain")


def test_delivery_key_is_event_id(payload: Payload) -> None:
    body = payload("vk", "wall_reply_new")
    assert vk.delivery_key(body) == "b2a9c0f4e77d1a35c6e0f9d2b4a8c1e3f5d7a9b0"
    with pytest.raises(Malformed, match="event_id"):
        vk.delivery_key(with_changes(body, event_id=None))
    with pytest.raises(Malformed, match="JSON"):
        vk.delivery_key(b"{not json")


# --- wall comments ---------------------------------------------------------------------------


def test_citizen_comment(payload: Payload) -> None:
    assert one(PAGE, payload("vk", "wall_reply_new")) == InboundEvent(
        kind=EventKind.citizen_message,
        source_key="wall:-218734591_1542:9187",
        thread_key="wall:-218734591_1542",
        thread_kind=ThreadKind.comment,
        author_id="512348907",
        author_name="",
        text=(
            "Добрый день! Когда отремонтируют дорогу на ул. Садовой у дома 14? "
            "Ямы такие, что машины бьют подвеску."
        ),
        sent_at=datetime(2025, 10, 14, 6, 12, 33, tzinfo=UTC),
        attachments=(),
        reply_to_key=None,
        permalink="https://vk.com/wall-218734591_1542?reply=9187",
        reply_ref={
            "method": "wall",
            "owner_id": "-218734591",
            "post_id": "1542",
            "comment_id": "9187",
        },
        raw_type="wall_reply_new",
    )


def test_community_reply_is_the_page_answering_the_comment(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_reply_new_page"))
    assert event.kind is EventKind.page_reply
    assert event.source_key == "wall:-218734591_1542:9195"
    assert event.thread_key == "wall:-218734591_1542"
    assert event.reply_to_key == "wall:-218734591_1542:9187"
    assert event.author_id == "-218734591"
    assert event.permalink == "https://vk.com/wall-218734591_1542?reply=9195&thread=9187"


def test_page_reply_without_reply_to_comment_answers_the_thread_top(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_reply_new_page_no_reply_to"))
    assert event.kind is EventKind.page_reply
    assert event.reply_to_key == "wall:-218734591_1542:9187"


def test_citizen_reply_inside_a_thread_stays_in_the_post_thread(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_reply_new_thread"))
    assert event.kind is EventKind.citizen_message
    assert event.thread_key == "wall:-218734591_1542"
    assert event.source_key == "wall:-218734591_1542:9201"
    assert event.reply_to_key == "wall:-218734591_1542:9195"
    assert event.reply_ref["comment_id"] == "9201"


def test_staff_account_comment_is_a_page_reply(payload: Payload) -> None:
    body = payload("vk", "wall_reply_new_staff")
    event = one(PAGE, body)
    assert event.kind is EventKind.page_reply
    assert event.author_id == "377001122"
    assert event.reply_to_key == "wall:-218734591_1542:9201"
    no_staff = PageSecrets(platform="vk", key="k", external_id="218734591", secret="s")
    assert one(no_staff, body).kind is EventKind.citizen_message


def test_sticker_only_comment_keeps_the_attachment(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_reply_new_sticker"))
    assert event.kind is EventKind.citizen_message
    assert event.text == ""
    assert event.attachments == (Attachment(type="sticker", url=None, id="9012"),)


def test_undated_events_take_the_delivery_time_so_a_replay_repeats_them(
    payload: Payload,
) -> None:
    body = payload("vk", "wall_reply_delete")
    later = datetime(2025, 10, 20, 9, 0, tzinfo=UTC)
    assert vk.parse(PAGE, body, RECEIVED) == vk.parse(PAGE, body, RECEIVED)
    assert [e.sent_at for e in vk.parse(PAGE, body, later)] == [later]
    # A dated event keeps the platform's time whenever it is processed.
    dated = payload("vk", "wall_reply_new")
    assert vk.parse(PAGE, dated, RECEIVED) == vk.parse(PAGE, dated, later)


def test_edit_restore_and_delete_share_the_comment_key(payload: Payload) -> None:
    edit = one(PAGE, payload("vk", "wall_reply_edit"))
    restore = one(PAGE, payload("vk", "wall_reply_restore"))
    delete = one(PAGE, payload("vk", "wall_reply_delete"))
    assert {e.source_key for e in (edit, restore, delete)} == {"wall:-218734591_1542:9187"}
    assert edit.kind is EventKind.edit
    assert "у домов 14–18" in edit.text
    assert edit.sent_at == RECEIVED  # VK does not say when the edit happened
    assert restore.kind is EventKind.restore
    assert restore.text.startswith("Добрый день!")
    assert restore.sent_at == datetime(2025, 10, 14, 6, 12, 33, tzinfo=UTC)
    assert delete.kind is EventKind.delete
    assert delete.text == ""
    assert delete.author_id == "512348907"
    assert delete.thread_key == "wall:-218734591_1542"
    assert delete.sent_at == RECEIVED


def test_page_post_is_context(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_post_new"))
    assert event.kind is EventKind.context
    assert event.source_key == event.thread_key == "wall:-218734591_1542"
    assert event.context_text.startswith("С 20 октября")
    assert event.permalink == "https://vk.com/wall-218734591_1542"


def test_citizen_post_on_the_wall_is_a_question(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "wall_post_new_suggest"))
    assert event.kind is EventKind.citizen_message
    assert event.source_key == "wall:-218734591_1550"
    assert event.reply_ref == {"method": "wall", "owner_id": "-218734591", "post_id": "1550"}


# --- private messages --------------------------------------------------------------------------


def test_private_photo_message(payload: Payload) -> None:
    assert one(PAGE, payload("vk", "message_new")) == InboundEvent(
        kind=EventKind.citizen_message,
        source_key="msg:384756120:312",
        thread_key="msg:384756120",
        thread_kind=ThreadKind.message,
        author_id="384756120",
        author_name="",
        text="",
        sent_at=datetime.fromtimestamp(1760424005, UTC),
        attachments=(
            Attachment(
                type="photo",
                url="https://sun9-1.userapi.com/example/photo.jpg",
                id="photo384756120_457239561",
            ),
        ),
        reply_ref={
            "method": "messages",
            "peer_id": "384756120",
            "message_id": "4471",
            "conversation_message_id": "312",
        },
        raw_type="message_new",
    )


def test_message_replying_to_another_is_linked(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "message_new_text"))
    assert event.source_key == "msg:384756120:313"
    assert event.reply_to_key == "msg:384756120:312"


def test_group_conversation_message_with_id_zero_is_keyed_by_conversation_id(
    payload: Payload,
) -> None:
    event = one(PAGE, payload("vk", "message_new_chat"))
    assert event.source_key == "msg:2000000066:2169"
    assert event.thread_key == "msg:2000000066"
    assert event.author_id == "612444319"
    assert event.reply_ref["conversation_message_id"] == "2169"


def test_old_unwrapped_message_new_is_understood(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "message_new_old"))
    assert event.kind is EventKind.citizen_message
    assert event.source_key == "msg:384756120:318"
    assert event.text == "Добрый вечер, подскажите часы приёма главы."


def test_outgoing_message_is_a_page_reply_by_the_admin(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "message_reply"))
    assert event.kind is EventKind.page_reply
    assert event.source_key == "msg:384756120:320"
    assert event.author_id == "377001122"
    assert event.reply_to_key == "msg:384756120:313"


def test_message_edit(payload: Payload) -> None:
    event = one(PAGE, payload("vk", "message_edit"))
    assert event.kind is EventKind.edit
    assert event.source_key == "msg:384756120:313"
    assert event.sent_at == datetime.fromtimestamp(1760424400, UTC)
    assert "третью неделю" in event.text


def test_message_without_conversation_id_in_a_chat_is_malformed(payload: Payload) -> None:
    data = json.loads(payload("vk", "message_new_chat"))
    del data["object"]["message"]["conversation_message_id"]
    with pytest.raises(Malformed, match="conversation_message_id"):
        vk.parse(PAGE, json.dumps(data).encode(), RECEIVED)


# --- other comment families ----------------------------------------------------------------------


def test_board_comment_and_page_answer_by_mention(payload: Payload) -> None:
    question = one(PAGE, payload("vk", "board_post_new"))
    assert question.kind is EventKind.citizen_message
    assert question.source_key == "board:55:12"
    assert question.thread_key == "board:55"
    assert question.permalink == "https://vk.com/topic-218734591_55?post=12"
    assert question.reply_ref == {
        "method": "board",
        "comment_id": "12",
        "group_id": "218734591",
        "topic_id": "55",
    }
    answer = one(PAGE, payload("vk", "board_post_new_page"))
    assert answer.kind is EventKind.page_reply
    assert answer.reply_to_key == "board:55:12"


def test_photo_video_and_market_comments(payload: Payload) -> None:
    photo = one(PAGE, payload("vk", "photo_comment_new"))
    assert photo.source_key == "photo:-218734591_457240011:77"
    assert photo.permalink == "https://vk.com/photo-218734591_457240011"
    assert photo.reply_ref["photo_id"] == "457240011"
    video = one(PAGE, payload("vk", "video_comment_delete"))
    assert video.kind is EventKind.delete
    assert video.source_key == "video:-218734591_456239020:31"
    market = one(PAGE, payload("vk", "market_comment_new"))
    assert market.source_key == "market:-218734591_8801:5"
    assert market.permalink == "https://vk.com/product-218734591_8801"


@pytest.mark.parametrize("name", ["message_event", "group_join"])
def test_other_types_are_recorded_as_ignored(payload: Payload, name: str) -> None:
    event = one(PAGE, payload("vk", name))
    assert event.kind is EventKind.ignored
    assert event.raw_type == json.loads(payload("vk", name))["type"]
    assert event.source_key.startswith(f"vk:{event.raw_type}:")
    assert event.sent_at == RECEIVED


@pytest.mark.parametrize("obj", [{}, None, [1], "text"])
def test_unknown_type_never_raises(payload: Payload, obj: object) -> None:
    body = with_changes(payload("vk", "group_join"), type="donut_subscription_new", object=obj)
    assert one(PAGE, body).kind is EventKind.ignored


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'{"object": {}}', "type"),
        (b'{"type": "wall_reply_new", "object": []}', "object"),
        (b'{"type": "wall_reply_new", "object": {"id": 5, "from_id": 1}}', "post_id"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        vk.parse(PAGE, body, RECEIVED)


# --- sending replies ---------------------------------------------------------------------------


def reply_to(event: InboundEvent, text: str = "Ответ", reply_id: int = 41) -> Reply:
    return Reply(id=reply_id, text=text, reply_ref=event.reply_ref, thread_key=event.thread_key)


def test_wall_reply_request_and_echo_match(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    question = one(PAGE, payload("vk", "wall_reply_new"))
    api.reply(json={"response": {"comment_id": 9195, "parents_stack": [9187]}})
    published = vk.send_reply(client, PAGE, reply_to(question, "Ирина, здравствуйте!"))
    request = api.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://vk.test/method/wall.createComment"
    assert request.headers["authorization"] == "Bearer vk1.a.community-token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert api.form() == {
        "owner_id": "-218734591",
        "post_id": "1542",
        "from_group": "218734591",
        "reply_to_comment": "9187",
        "message": "Ирина, здравствуйте!",
        "guid": "otklik-41",
        "v": "5.199",
    }
    assert published.external_id == "9195"
    assert published.permalink == "https://vk.com/wall-218734591_1542?reply=9195&thread=9187"
    assert published.sent_at is None  # VK's answer is undated: the caller records its clock
    echo = one(PAGE, payload("vk", "wall_reply_new_page"))
    assert published.source_key == echo.source_key


def test_wall_reply_guid_is_stable_across_retries(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    reply = reply_to(one(PAGE, payload("vk", "wall_reply_new")), reply_id=7)
    api.reply(502, text="Bad Gateway")
    api.reply(json={"error": {"error_code": 6, "error_msg": "Too many requests per second"}})
    api.fail(httpx.ConnectError("connection refused"))
    api.reply(json={"response": {"comment_id": 9300, "parents_stack": []}})
    with pytest.raises(TransientError):
        vk.send_reply(client, PAGE, reply)
    with pytest.raises(TransientError) as rate_limited:
        vk.send_reply(client, PAGE, reply)
    assert rate_limited.value.retry_after == 1.0
    with pytest.raises(TransientError):
        vk.send_reply(client, PAGE, reply)
    assert vk.send_reply(client, PAGE, reply).source_key == "wall:-218734591_1542:9300"
    assert [api.form(i)["guid"] for i in range(4)] == ["otklik-7"] * 4


def test_message_reply_uses_peer_ids_and_stable_random_id(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    question = one(PAGE, payload("vk", "message_new_text"))
    api.reply(json={"error": {"error_code": 10, "error_msg": "Internal server error"}})
    api.reply(
        json={
            "response": [{"peer_id": 384756120, "message_id": 4490, "conversation_message_id": 320}]
        }
    )
    reply = reply_to(question, "Здравствуйте! Заявку передали в управляющую компанию.")
    with pytest.raises(TransientError):
        vk.send_reply(client, PAGE, reply)
    published = vk.send_reply(client, PAGE, reply)
    assert str(api.requests[1].url) == "https://vk.test/method/messages.send"
    form = api.form(1)
    assert form == api.form(0)
    assert json.loads(form.pop("forward")) == {
        "peer_id": 384756120,
        "conversation_message_ids": [313],
        "is_reply": True,
    }
    assert form == {
        "peer_ids": "384756120",
        "random_id": str(2**30 + 41),
        "message": "Здравствуйте! Заявку передали в управляющую компанию.",
        "v": "5.199",
    }
    assert published.external_id == "4490"
    assert published.source_key == one(PAGE, payload("vk", "message_reply")).source_key


def test_message_reply_refused_for_one_peer(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    question = one(PAGE, payload("vk", "message_new"))
    api.reply(
        json={
            "response": [
                {"peer_id": 384756120, "error": {"code": 901, "description": "no permission"}}
            ]
        }
    )
    with pytest.raises(PermanentError) as refused:
        vk.send_reply(client, PAGE, reply_to(question))
    assert refused.value.code == "messages_not_allowed"


def test_too_long_private_message_is_refused_before_sending(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    question = one(PAGE, payload("vk", "message_new"))
    with pytest.raises(PermanentError) as refused:
        vk.send_reply(client, PAGE, reply_to(question, "а" * 9001))
    assert refused.value.code == "too_long"
    assert "9000" in refused.value.message_ru
    assert api.requests == []


@given(st.integers(min_value=0, max_value=2**40))
def test_random_id_is_a_positive_int32(reply_id: int) -> None:
    assert 0 < random_id(reply_id) < 2**31
    assert random_id(reply_id) == random_id(reply_id)


@given(st.integers(min_value=0, max_value=2**30 - 1), st.integers(min_value=0, max_value=2**30 - 1))
def test_random_id_differs_between_replies(first: int, second: int) -> None:
    assert (random_id(first) == random_id(second)) == (first == second)


def test_board_reply_needs_the_admin_user_token(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    question = one(PAGE, payload("vk", "board_post_new"))
    api.reply(json={"response": 14})
    published = vk.send_reply(client, PAGE, reply_to(question, "Пункт работает по будням."))
    assert str(api.requests[0].url) == "https://vk.test/method/board.createComment"
    assert api.requests[0].headers["authorization"] == "Bearer vk1.a.admin-user-token"
    assert api.form() == {
        "topic_id": "55",
        "message": "Пункт работает по будням.",
        "group_id": "218734591",
        "from_group": "1",
        "guid": "otklik-41",
        "v": "5.199",
    }
    assert published.source_key == "board:55:14"
    assert published.permalink == "https://vk.com/topic-218734591_55?post=14"


def test_photo_reply(payload: Payload, api: Any, client: httpx.Client) -> None:
    question = one(PAGE, payload("vk", "photo_comment_new"))
    api.reply(json={"response": 78})
    published = vk.send_reply(client, PAGE, reply_to(question))
    assert str(api.requests[0].url) == "https://vk.test/method/photos.createComment"
    assert api.form() == {
        "photo_id": "457240011",
        "message": "Ответ",
        "owner_id": "-218734591",
        "from_group": "1",
        "reply_to_comment": "77",
        "guid": "otklik-41",
        "v": "5.199",
    }
    assert published.source_key == "photo:-218734591_457240011:78"


def test_can_reply_explains_missing_tokens(
    payload: Payload, api: Any, client: httpx.Client
) -> None:
    board = one(PAGE, payload("vk", "board_post_new")).reply_ref
    wall = one(PAGE, payload("vk", "wall_reply_new")).reply_ref
    community_only = PageSecrets(
        platform="vk", key="k", external_id="218734591", secret="s", access_token="t"
    )
    nothing = PageSecrets(platform="vk", key="k", external_id="218734591", secret="s")
    assert vk.can_reply(PAGE, board) is None
    assert vk.can_reply(community_only, wall) is None
    board_problem = vk.can_reply(community_only, board)
    assert board_problem is not None
    assert "администратора" in board_problem
    wall_problem = vk.can_reply(nothing, wall)
    assert wall_problem is not None
    assert "ключ доступа сообщества" in wall_problem
    assert vk.can_reply(PAGE, {}) is not None
    with pytest.raises(PermanentError) as refused:
        vk.send_reply(client, community_only, reply_to(one(PAGE, payload("vk", "board_post_new"))))
    assert refused.value.code == "cannot_reply"
    assert refused.value.message_ru == board_problem
    assert api.requests == []


@pytest.mark.parametrize(
    ("code", "slug"),
    [
        (5, "token_invalid"),
        (27, "token_invalid"),
        (15, "access_denied"),
        (212, "comments_closed"),
        (213, "comments_closed"),
        (222, "links_forbidden"),
        (223, "too_many_replies"),
        (900, "citizen_blocked"),
        (901, "messages_not_allowed"),
        (902, "privacy"),
        (914, "too_long"),
        (4242, "vk_4242"),
    ],
)
def test_permanent_errors_are_explained_in_russian(
    payload: Payload,
    api: Any,
    client: httpx.Client,
    code: int,
    slug: str,
) -> None:
    api.reply(json={"error": {"error_code": code, "error_msg": "Something went wrong"}})
    with pytest.raises(PermanentError) as refused:
        vk.send_reply(client, PAGE, reply_to(one(PAGE, payload("vk", "wall_reply_new"))))
    assert refused.value.code == slug
    assert any("а" <= ch <= "я" for ch in refused.value.message_ru.lower())


@pytest.mark.parametrize(
    ("code", "wait"), [(1, None), (6, 1.0), (9, 60.0), (10, None), (29, 3600.0)]
)
def test_transient_error_codes(
    payload: Payload,
    api: Any,
    client: httpx.Client,
    code: int,
    wait: float | None,
) -> None:
    api.reply(json={"error": {"error_code": code, "error_msg": "later"}})
    with pytest.raises(TransientError) as later:
        vk.send_reply(client, PAGE, reply_to(one(PAGE, payload("vk", "wall_reply_new"))))
    assert later.value.retry_after == wait


def test_non_json_answer_is_transient(payload: Payload, api: Any, client: httpx.Client) -> None:
    api.reply(200, text="<html>maintenance</html>")
    with pytest.raises(TransientError):
        vk.send_reply(client, PAGE, reply_to(one(PAGE, payload("vk", "wall_reply_new"))))
