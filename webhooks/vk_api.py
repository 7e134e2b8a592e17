"""VK API calls that publish an operator's reply, look up citizens' names, and VK error
codes mapped for operators."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from webhooks.base import (
    PageSecrets,
    PermanentError,
    Published,
    Reply,
    TransientError,
    api_base,
    as_dict,
    as_int,
    as_list,
    id_str,
    post,
    response_json,
    retry_after_header,
)

VK_API = "https://api.vk.com"
API_VERSION = "5.199"
MESSAGE_LIMIT = 9000  # messages.send "message" maxLength in the VK API schema

# random_id must be a positive int32 and unique per message of this sender; an offset keeps
# ours away from the small numbers other tools on the same community token tend to use.
_RANDOM_ID_OFFSET = 1 << 30
_RANDOM_ID_SPAN = (1 << 31) - _RANDOM_ID_OFFSET

# Comment families answered with a community token (wall) or an admin user token (others):
# method -> (API method, field naming the commented object).
_COMMENT_METHODS: dict[str, tuple[str, str]] = {
    "wall": ("wall.createComment", "post_id"),
    "board": ("board.createComment", "topic_id"),
    "photo": ("photos.createComment", "photo_id"),
    "video": ("video.createComment", "video_id"),
    "market": ("market.createComment", "item_id"),
}
_USER_TOKEN_METHODS = frozenset({"board", "photo", "video", "market"})

# Error codes worth retrying, with a sensible wait when VK gives none (seconds).
_TRANSIENT: dict[int, float | None] = {1: None, 6: 1.0, 9: 60.0, 10: None, 29: 3600.0}
_TOKEN_INVALID = (
    "token_invalid",
    "ВКонтакте не принимает ключ доступа страницы: он недействителен или отозван. "
    "Создайте новый ключ (Управление сообществом → Работа с API) и обновите его "
    "в карточке страницы, затем повторите отправку.",
)
_PERMANENT: dict[int, tuple[str, str]] = {
    5: _TOKEN_INVALID,
    27: _TOKEN_INVALID,
    7: (
        "no_permission",
        "У ключа доступа нет прав на это действие. Выдайте ключу права на сообщения "
        "и стену сообщества (Управление → Работа с API) и обновите его в карточке страницы.",
    ),
    15: (
        "access_denied",
        "ВКонтакте запретил доступ: у ключа нет прав на этот объект или объект закрыт. "
        "Проверьте, что ключ выдан администратором этого сообщества, или ответьте во ВКонтакте.",
    ),
    203: (
        "access_denied",
        "Нет доступа к сообществу: ключ принадлежит другому сообществу или администратору "
        "без нужных прав. Проверьте ключ в карточке страницы.",
    ),
    212: (
        "comments_closed",
        "Комментарии к этой записи закрыты или удалены, поэтому ответ опубликовать нельзя. "
        "Откройте комментарии или ответьте гражданину в личных сообщениях.",
    ),
    213: (
        "comments_closed",
        "Нет доступа к комментариям этой записи (комментарии закрыты или запись удалена). "
        "Ответьте гражданину другим способом.",
    ),
    222: (
        "links_forbidden",
        "ВКонтакте не разрешает ссылки в этом ответе. Уберите ссылку из текста и отправьте снова.",
    ),
    223: (
        "too_many_replies",
        "Под этой записью слишком много ответов: ВКонтакте больше не принимает комментарии. "
        "Ответьте гражданину в личных сообщениях.",
    ),
    900: (
        "citizen_blocked",
        "Гражданин находится в чёрном списке сообщества, сообщение ему отправить нельзя. "
        "Уберите его из чёрного списка или ответьте публично.",
    ),
    901: (
        "messages_not_allowed",
        "Гражданин не разрешил сообщения от сообщества (или запретил их). "
        "Ответьте публично, например в комментариях.",
    ),
    902: (
        "privacy",
        "Настройки приватности гражданина не позволяют отправить ему сообщение. Ответьте публично.",
    ),
    914: (
        "too_long",
        "Ответ слишком длинный для ВКонтакте. Сократите текст или разделите его на части.",
    ),
    100: (
        "invalid_request",
        "ВКонтакте отклонил запрос: неверные параметры (возможно, сообщение или запись "
        "удалены). Проверьте обращение во ВКонтакте и ответьте там при необходимости.",
    ),
}


def random_id(reply_id: int) -> int:
    """messages.send random_id: stable for one outbox item, so a retry cannot send twice."""
    return _RANDOM_ID_OFFSET + reply_id % _RANDOM_ID_SPAN


def guid(reply_id: int) -> str:
    """*.createComment guid: stable for one outbox item, so a retry cannot post twice."""
    return f"otklik-{reply_id}"


def reply_problem(page: PageSecrets, ref: Mapping[str, str]) -> str | None:
    method = ref.get("method", "")
    if method == "messages":
        required: tuple[str, ...] = ("peer_id",)
    elif method in _COMMENT_METHODS:
        object_field = _COMMENT_METHODS[method][1]
        owner = "group_id" if method == "board" else "owner_id"
        required = (owner, object_field)
    else:
        return (
            "Для этого сообщения нет данных, нужных для ответа через Отклик. "
            "Ответьте гражданину во ВКонтакте."
        )
    if any(not ref.get(name) for name in required):
        return "Данные для ответа неполные. Ответьте гражданину во ВКонтакте."
    if method in _USER_TOKEN_METHODS:
        if not page.user_token:
            return (
                "Ответы на комментарии в обсуждениях, к фото, видео и товарам ВКонтакте "
                "принимает только с ключом администратора сообщества (пользовательским). "
                "Добавьте такой ключ в карточку страницы или ответьте во ВКонтакте."
            )
    elif not page.access_token:
        return (
            "Для страницы не задан ключ доступа сообщества ВКонтакте. Добавьте его "
            "в карточку страницы (Управление сообществом → Работа с API)."
        )
    return None


def publish(client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
    problem = reply_problem(page, reply.reply_ref)
    if problem:
        raise PermanentError("cannot_reply", problem)
    if reply.reply_ref["method"] == "messages":
        return _send_message(client, page, reply)
    return _create_comment(client, page, reply)


def _create_comment(client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
    ref = reply.reply_ref
    method = ref["method"]
    api_method, object_field = _COMMENT_METHODS[method]
    params: dict[str, str] = {object_field: ref[object_field], "message": reply.text}
    if method == "board":
        params["group_id"] = ref["group_id"]
        params["from_group"] = "1"
        thread = f"board:{ref['topic_id']}"
        token = page.user_token
    else:
        params["owner_id"] = ref["owner_id"]
        thread = f"{method}:{ref['owner_id']}_{ref[object_field]}"
        if method == "wall":
            # wall.createComment wants the community id itself in from_group.
            params["from_group"] = page.external_id.strip().removeprefix("-")
            token = page.access_token
        else:
            params["from_group"] = "1"
            token = page.user_token
        if ref.get("comment_id"):
            params["reply_to_comment"] = ref["comment_id"]
    params["guid"] = guid(reply.id)
    result = _call(client, page, api_method, params, token or "")
    comment_id = (
        as_int(result) if not isinstance(result, dict) else as_int(result.get("comment_id"))
    )
    if comment_id is None:
        raise TransientError(f"VK {api_method}: no comment id in the answer")
    return Published(
        external_id=str(comment_id),
        source_key=f"{thread}:{comment_id}",
        sent_at=None,  # VK does not say when; the caller records its clock
        permalink=_comment_link(method, ref, object_field, comment_id, as_dict(result)),
    )


def _comment_link(
    method: str, ref: Mapping[str, str], field: str, comment_id: int, result: dict[str, Any]
) -> str:
    if method == "board":
        return f"https://vk.com/topic-{ref['group_id']}_{ref['topic_id']}?post={comment_id}"
    owner, object_id = ref["owner_id"], ref[field]
    if method == "wall":
        link = f"https://vk.com/wall{owner}_{object_id}?reply={comment_id}"
        stack = as_list(result.get("parents_stack"))
        if stack:
            link += f"&thread={id_str(stack[0])}"
        return link
    if method == "market":
        return f"https://vk.com/product{owner}_{object_id}"
    return f"https://vk.com/{method}{owner}_{object_id}"


def _send_message(client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
    ref = reply.reply_ref
    peer = ref["peer_id"]
    if len(reply.text) > MESSAGE_LIMIT:
        raise PermanentError(
            "too_long",
            f"Сообщение ВКонтакте не может быть длиннее {MESSAGE_LIMIT} символов "
            f"(в ответе {len(reply.text)}). Сократите текст или разделите его на части.",
        )
    # peer_ids (even for one peer) makes VK answer with the conversation_message_id, which is
    # what the echo message_reply is keyed by.
    params = {"peer_ids": peer, "random_id": str(random_id(reply.id)), "message": reply.text}
    cmid = as_int(ref.get("conversation_message_id"))
    if cmid:
        # forward+is_reply works with conversation ids, so also in group chats where id is 0.
        forward = {"peer_id": int(peer), "conversation_message_ids": [cmid], "is_reply": True}
        params["forward"] = json.dumps(forward, separators=(",", ":"))
    result = _call(client, page, "messages.send", params, page.access_token or "")
    if isinstance(result, list):
        items = [as_dict(item) for item in result]
        item = next((i for i in items if id_str(i.get("peer_id")) == peer), as_dict(None))
        if item.get("error"):
            raise _api_error(as_dict(item.get("error")) or {"error_msg": str(item["error"])})
        sent_cmid, message_id = id_str(item.get("conversation_message_id")), item.get("message_id")
        if sent_cmid:
            return Published(
                external_id=id_str(message_id) or sent_cmid,
                source_key=f"msg:{peer}:{sent_cmid}",
                sent_at=None,
            )
    elif as_int(result):
        # Older behaviour (a bare message id): the echo cannot be matched by conversation id.
        return Published(external_id=str(result), source_key=f"msg:{peer}:id{result}", sent_at=None)
    raise TransientError("VK messages.send: unexpected answer")


USERS_GET_LIMIT = 1000  # user_ids per users.get call


def users_get(client: httpx.Client, page: PageSecrets, user_ids: Sequence[str]) -> dict[str, str]:
    """Citizens' names ("Имя Фамилия") by VK user id, with the community token of `page`.

    VK payloads carry only `from_id`. At most USERS_GET_LIMIT ids per call; ids VK
    does not name (deleted or banned profiles, unknown ids) are missing from the answer.
    Raises TransientError (worth retrying) or PermanentError (the token is refused).
    """
    if len(user_ids) > USERS_GET_LIMIT:
        raise ValueError(f"users.get takes at most {USERS_GET_LIMIT} ids, not {len(user_ids)}")
    if not user_ids:
        return {}
    if not page.access_token:
        raise PermanentError("no_token", "Для страницы не задан ключ доступа сообщества ВКонтакте.")
    params = {"user_ids": ",".join(user_ids), "lang": "ru"}
    result = _call(client, page, "users.get", params, page.access_token)
    names: dict[str, str] = {}
    for item in as_list(result):
        user = as_dict(item)
        user_id = id_str(user.get("id"))
        if not user_id or user.get("deactivated"):
            continue
        parts = (str(user.get("first_name") or ""), str(user.get("last_name") or ""))
        name = " ".join(p.strip() for p in parts if p.strip())
        if name:
            names[user_id] = name[:255]
    return names


def _call(
    client: httpx.Client, page: PageSecrets, method: str, params: dict[str, str], token: str
) -> Any:
    url = f"{api_base(page, VK_API)}/method/{method}"
    response = post(
        client,
        "VK",
        url,
        data={**params, "v": API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"VK {method}: HTTP {response.status_code}", retry_after_header(response)
        )
    payload = response_json(response, "VK")
    if isinstance(payload, dict) and "error" in payload:
        raise _api_error(as_dict(payload["error"]))
    if not isinstance(payload, dict) or "response" not in payload:
        raise TransientError(f"VK {method}: HTTP {response.status_code} without a response")
    return payload["response"]


def _api_error(error: dict[str, Any]) -> TransientError | PermanentError:
    code = as_int(error.get("error_code")) or as_int(error.get("code"))
    text = str(error.get("error_msg") or error.get("description") or "")
    if code in _TRANSIENT:
        return TransientError(f"VK error {code}: {text}", _TRANSIENT[code])
    if code in _PERMANENT:
        slug, message = _PERMANENT[code]
        return PermanentError(slug, message)
    return PermanentError(
        f"vk_{code}",
        f"ВКонтакте отклонил ответ (код {code}: {text}). "
        "Проверьте обращение во ВКонтакте и при необходимости ответьте там.",
    )
