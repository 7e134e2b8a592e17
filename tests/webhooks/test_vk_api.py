"""VK replies: the API requests that publish them, their ids, and VK's errors for operators."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.webhooks.test_vk import PAGE, Payload, one, vk
from webhooks import InboundEvent, PageSecrets, PermanentError, Reply, TransientError
from webhooks.vk_api import USERS_GET_LIMIT, random_id, users_get


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


# --- users.get: citizens' names -----------------------------------------------------------


def test_users_get_names_citizens_with_the_community_token(api: Any, client: httpx.Client) -> None:
    api.reply(
        json={
            "response": [
                {"id": 512348907, "first_name": "Ирина", "last_name": "Смирнова"},
                {"id": 384756120, "first_name": "Павел", "last_name": "Орлов", "is_closed": True},
                {"id": 100, "first_name": "DELETED", "last_name": "", "deactivated": "deleted"},
            ]
        }
    )
    names = users_get(client, PAGE, ["512348907", "384756120", "100", "7"])
    assert names == {"512348907": "Ирина Смирнова", "384756120": "Павел Орлов"}
    request = api.requests[0]
    assert str(request.url) == "https://vk.test/method/users.get"
    assert request.headers["authorization"] == "Bearer vk1.a.community-token"
    assert api.form() == {"user_ids": "512348907,384756120,100,7", "lang": "ru", "v": "5.199"}


def test_users_get_takes_at_most_a_thousand_ids(api: Any, client: httpx.Client) -> None:
    api.reply(json={"response": []})
    assert users_get(client, PAGE, [str(n) for n in range(1, USERS_GET_LIMIT + 1)]) == {}
    assert len(api.form()["user_ids"].split(",")) == 1000
    with pytest.raises(ValueError, match="at most 1000"):
        users_get(client, PAGE, [str(n) for n in range(USERS_GET_LIMIT + 1)])
    assert users_get(client, PAGE, []) == {}
    assert len(api.requests) == 1  # nothing to ask: no call


def test_users_get_refusals(api: Any, client: httpx.Client) -> None:
    api.reply(json={"error": {"error_code": 5, "error_msg": "User authorization failed"}})
    with pytest.raises(PermanentError) as refused:
        users_get(client, PAGE, ["512348907"])
    assert refused.value.code == "token_invalid"
    api.reply(json={"error": {"error_code": 6, "error_msg": "Too many requests per second"}})
    with pytest.raises(TransientError):
        users_get(client, PAGE, ["512348907"])
    api.reply(503, text="Service Unavailable")
    with pytest.raises(TransientError):
        users_get(client, PAGE, ["512348907"])
    without_token = PageSecrets(platform="vk", key="k", external_id="1", access_token=None)
    with pytest.raises(PermanentError) as no_token:
        users_get(client, without_token, ["512348907"])
    assert no_token.value.code == "no_token"
    assert len(api.requests) == 3
