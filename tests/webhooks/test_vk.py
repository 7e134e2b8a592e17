"""VK Callback API deliveries: verifying, acknowledging and parsing what VK sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.webhooks.conftest import RECEIVED
from webhooks import (
    Ack,
    Attachment,
    EventKind,
    InboundEvent,
    Malformed,
    PageSecrets,
    ThreadKind,
    Unauthentic,
)
from webhooks.vk import VkAdapter

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


def test_confirmation_is_answered_with_the_code(payload: Payload) -> None:
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


def test_confirmation_without_the_secret_is_refused_like_a_wrong_secret(payload: Payload) -> None:
    # VK sends the secret in every request, the confirmation included (platforms.md):
    # one without it is not VK's, and must not learn the confirmation string.
    body = json.dumps({"type": "confirmation", "group_id": 218734591}).encode()
    with pytest.raises(Unauthentic):
        vk.verify(PAGE, {}, body)


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
