"""MAX: Bot API webhook in, POST /messages out (see docs/platforms.md, section 4).

Comment updates (comment_created/edited/removed) are not fully documented; they are read
tolerantly from a "comment" or "message" object and keyed by the post (recipient.post_id).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from webhooks.base import (
    Ack,
    Malformed,
    PageSecrets,
    PermanentError,
    Published,
    Reply,
    TransientError,
    Unauthentic,
    api_base,
    as_dict,
    as_list,
    as_str,
    id_str,
    ignored,
    normalize_staff,
    parse_json,
    post,
    response_json,
    retry_after_header,
    secrets_match,
    split_text,
    utc_from_millis,
)
from webhooks.events import Attachment, EventKind, InboundEvent, ThreadKind

MAX_API = "https://platform-api2.max.ru"
TEXT_LIMIT = 4000
SECRET_HEADER = "x-max-bot-api-secret"

_MESSAGE_KINDS = {"message_created": EventKind.citizen_message, "message_edited": EventKind.edit}
_COMMENT_KINDS = {
    "comment_created": EventKind.citizen_message,
    "comment_edited": EventKind.edit,
    "comment_removed": EventKind.delete,
}


class MaxAdapter:
    name = "max"

    # --- receiving ---------------------------------------------------------------------------

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        if not secrets_match(page.secret, headers.get(SECRET_HEADER)):
            raise Unauthentic("X-Max-Bot-Api-Secret is missing or does not match")

    def delivery_key(self, body: bytes) -> str:
        data = parse_json(body)
        update_type = as_str(data.get("update_type"))
        if not update_type:
            raise Malformed("update_type is missing")
        message = as_dict(data.get("message"))
        comment = as_dict(data.get("comment"))
        # No delivery id exists; edits share the mid, so the type and time are part of the key.
        ref = (
            _mid(message)
            or id_str(data.get("message_id"))
            or _comment_id(comment)
            or id_str(data.get("comment_id"))
            or f"{id_str(data.get('chat_id'))}/{id_str(as_dict(data.get('user')).get('user_id'))}"
        )
        return f"{update_type}:{ref}:{id_str(data.get('timestamp'))}"

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        return Ack(body="")

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        data = parse_json(body)
        update_type = as_str(data.get("update_type"))
        if not update_type:
            raise Malformed("update_type is missing")
        sent_at = utc_from_millis(data.get("timestamp")) or received_at
        if update_type in _MESSAGE_KINDS and isinstance(data.get("message"), dict):
            return [_message_event(page, update_type, data["message"], sent_at)]
        if update_type == "message_removed":
            mid = id_str(data.get("message_id"))
            if not mid:
                raise Malformed("message_id is required in message_removed")
            return [
                InboundEvent(
                    kind=EventKind.delete,
                    source_key=f"max:{mid}",
                    thread_key=f"max:{id_str(data.get('chat_id'))}",
                    thread_kind=ThreadKind.message,
                    author_id=id_str(data.get("user_id")),
                    author_name="",
                    text="",
                    sent_at=sent_at,
                    raw_type=update_type,
                )
            ]
        if update_type in _COMMENT_KINDS:
            return [_comment_event(page, update_type, data, sent_at)]
        return [ignored(update_type, f"max:{self.delivery_key(body)}", sent_at)]

    # --- answering ---------------------------------------------------------------------------

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        if not (reply_ref.get("user_id") or reply_ref.get("chat_id") or reply_ref.get("post_id")):
            return "Для этого сообщения нет данных, нужных для ответа. Ответьте в MAX."
        if not page.access_token:
            return "Для страницы не задан токен бота MAX. Добавьте его в карточку страницы."
        return None

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        problem = self.can_reply(page, reply.reply_ref)
        if problem:
            raise PermanentError("cannot_reply", problem)
        ref = reply.reply_ref
        base = api_base(page, MAX_API)
        if ref.get("post_id"):
            # Channel comments (unverified shape): POST /messages/{postMid}/comments.
            url, params = f"{base}/messages/{ref['post_id']}/comments", {}
        elif ref.get("user_id"):
            url, params = f"{base}/messages", {"user_id": ref["user_id"]}
        else:
            url, params = f"{base}/messages", {"chat_id": ref["chat_id"]}
        first: dict[str, Any] | None = None
        for number, part in enumerate(split_text(reply.text, TEXT_LIMIT)):
            # No "format": the operator's text goes out as typed, without markup surprises.
            payload: dict[str, Any] = {"text": part, "notify": True}
            if number == 0 and ref.get("mid"):
                payload["link"] = {"type": "reply", "mid": ref["mid"]}
            sent = _call(client, page, url, params, payload, number)
            first = first or sent
        assert first is not None  # split_text always yields at least one part
        mid = as_str(as_dict(first.get("body")).get("mid")) or id_str(first.get("id"))
        if not mid:
            raise TransientError("MAX: the answer has no message id")
        return Published(
            external_id=mid,
            source_key=f"max:{mid}",
            sent_at=utc_from_millis(first.get("timestamp")),
            permalink=as_str(first.get("url")) or None,
        )


def _is_page(page: PageSecrets, sender: dict[str, Any], chat_type: str) -> bool:
    if not sender:
        return chat_type == "channel"  # posted as the channel itself
    if sender.get("is_bot") is True:
        return True
    return id_str(sender.get("user_id")) in normalize_staff(page)


def _name(sender: dict[str, Any]) -> str:
    parts = (as_str(sender.get("first_name")), as_str(sender.get("last_name")))
    return " ".join(p for p in parts if p) or as_str(sender.get("name"))


def _message_event(
    page: PageSecrets, update_type: str, message: dict[str, Any], update_at: datetime
) -> InboundEvent:
    sender = as_dict(message.get("sender"))
    recipient = as_dict(message.get("recipient"))
    body = as_dict(message.get("body"))
    link = as_dict(message.get("link"))
    chat_id = id_str(recipient.get("chat_id"))
    chat_type = as_str(recipient.get("chat_type")) or "dialog"
    mid = _mid(message)
    if not mid:
        raise Malformed(f"message.body.mid is required in {update_type}")
    text, attachments = _content(body)
    forwarded = as_dict(link.get("message"))
    if not text and not attachments and link.get("type") == "forward":
        text, attachments = _content(forwarded)  # a pure forward has no body of its own
    reply_to_mid = as_str(forwarded.get("mid")) if link.get("type") == "reply" else ""
    reply_to_key = f"max:{reply_to_mid}" if reply_to_mid else None

    if chat_type == "dialog":
        thread_key, thread_kind = f"max:{chat_id}", ThreadKind.message
    else:
        # In group chats and channels every message starts its own thread unless it replies.
        # A group chat is a conversation (a message); only a channel's posts take comments.
        thread_key = f"max:{chat_id}:{reply_to_mid or mid}"
        thread_kind = ThreadKind.comment if chat_type == "channel" else ThreadKind.message
    # A pure forward has no mid of its own to reply to.
    ref: dict[str, str] = {"mid": mid} if body.get("mid") else {}
    user_id = id_str(sender.get("user_id"))
    if chat_type == "dialog" and user_id:
        ref["user_id"] = user_id
    elif chat_id:
        ref["chat_id"] = chat_id

    kind = _MESSAGE_KINDS[update_type]
    if kind is EventKind.citizen_message and _is_page(page, sender, chat_type):
        # A channel post that answers nothing is the page's own content, not a reply.
        channel_post = chat_type == "channel" and reply_to_key is None
        kind = EventKind.context if channel_post else EventKind.page_reply
    created_at = utc_from_millis(message.get("timestamp")) or update_at
    return InboundEvent(
        kind=kind,
        source_key=f"max:{mid}",
        thread_key=thread_key,
        thread_kind=thread_kind,
        author_id=user_id,
        author_name=_name(sender),
        text=text,
        # For an edit the update's own time is when it happened; the message keeps its own.
        sent_at=update_at if kind is EventKind.edit else created_at,
        attachments=attachments,
        reply_to_key=reply_to_key,
        permalink=as_str(message.get("url")) or None,
        reply_ref=ref,
        raw_type=update_type,
        context_text=text if kind is EventKind.context else "",
    )


def _mid(message: dict[str, Any]) -> str:
    mid = as_str(as_dict(message.get("body")).get("mid"))
    if mid:
        return mid
    if as_dict(message.get("link")).get("type") == "forward":
        # body is null for a pure forward: key it by chat and time instead.
        chat_id = id_str(as_dict(message.get("recipient")).get("chat_id"))
        return f"fwd:{chat_id}:{id_str(message.get('timestamp'))}"
    return ""


def _comment_id(comment: dict[str, Any]) -> str:
    return (
        as_str(as_dict(comment.get("body")).get("mid"))
        or id_str(comment.get("comment_id"))
        or id_str(comment.get("id"))
    )


def _comment_event(
    page: PageSecrets, update_type: str, data: dict[str, Any], update_at: datetime
) -> InboundEvent:
    obj = as_dict(data.get("comment")) or as_dict(data.get("message"))
    recipient = as_dict(obj.get("recipient")) or as_dict(data.get("recipient"))
    post_id = (
        id_str(recipient.get("post_id"))
        or id_str(obj.get("post_id"))
        or id_str(data.get("post_id"))
    )
    comment_id = (
        _comment_id(obj) or id_str(data.get("comment_id")) or id_str(data.get("message_id"))
    )
    kind = _COMMENT_KINDS[update_type]
    # A removal is found by the comment's id alone; the post is needed to thread the others.
    if not comment_id or not (post_id or kind is EventKind.delete):
        raise Malformed(f"the post id and the comment id are required in {update_type}")
    sender = as_dict(obj.get("sender")) or as_dict(data.get("user"))
    text, attachments = _content(as_dict(obj.get("body")) or obj)
    if kind is EventKind.citizen_message and sender and _is_page(page, sender, ""):
        kind = EventKind.page_reply
    link = as_dict(obj.get("link"))
    reply_to_mid = as_str(as_dict(link.get("message")).get("mid"))
    ref = {"post_id": post_id, "mid": comment_id}
    chat_id = id_str(recipient.get("chat_id"))
    if chat_id:
        ref["chat_id"] = chat_id
    created_at = utc_from_millis(obj.get("timestamp")) or update_at
    return InboundEvent(
        kind=kind,
        # Comment ids are message ids ("mid.…"): one key whichever update removes it.
        source_key=f"max:{comment_id}",
        thread_key=f"max:post:{post_id}" if post_id else f"max:{id_str(recipient.get('chat_id'))}",
        thread_kind=ThreadKind.comment,
        author_id=id_str(sender.get("user_id")),
        author_name=_name(sender),
        text="" if kind is EventKind.delete else text,
        sent_at=update_at if kind is EventKind.edit else created_at,
        attachments=() if kind is EventKind.delete else attachments,
        reply_to_key=f"max:{reply_to_mid}" if reply_to_mid else None,
        reply_ref=ref,
        raw_type=update_type,
    )


def _content(body: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    result: list[Attachment] = []
    for raw in as_list(body.get("attachments")):
        item = as_dict(raw)
        kind = as_str(item.get("type"))
        if not kind or kind == "inline_keyboard":
            continue
        payload = as_dict(item.get("payload"))
        ref = id_str(payload.get("photo_id")) or id_str(payload.get("id"))
        ref = ref or as_str(payload.get("token"))
        result.append(Attachment(kind, url=as_str(payload.get("url")) or None, id=ref or None))
    return as_str(body.get("text")), tuple(result)


def _call(
    client: httpx.Client,
    page: PageSecrets,
    url: str,
    params: dict[str, str],
    payload: dict[str, Any],
    part_number: int,
) -> dict[str, Any]:
    response = post(
        client,
        "MAX",
        url,
        params=params,
        json=payload,
        headers={"Authorization": page.access_token or ""},
    )
    status = response.status_code
    if status in (429, 503) or status >= 500:
        raise TransientError(f"MAX: HTTP {status}", retry_after_header(response))
    answer = as_dict(response_json(response, "MAX"))
    if status < 300 and isinstance(answer.get("message"), dict):
        message: dict[str, Any] = answer["message"]
        return message
    error = _permanent(status, as_str(answer.get("code")), as_str(answer.get("message")))
    if part_number:
        error.message_ru += f" Первые части ответа ({part_number}) уже опубликованы."
    raise error


def _permanent(status: int, code: str, text: str) -> PermanentError:
    detail = text or code or f"HTTP {status}"
    if status == 401:
        return PermanentError(
            "token_invalid",
            "MAX не принимает токен бота: он неверен или отозван. Скопируйте токен "
            "на платформе MAX для бизнеса (Чат-боты → Настройки) и обновите его "
            "в карточке страницы.",
        )
    if status == 403:
        return PermanentError(
            "bot_no_access",
            f"У бота MAX нет доступа к этому чату ({detail}): пользователь остановил бота "
            "или бота лишили прав администратора.",
        )
    if status == 404:
        return PermanentError(
            "not_found",
            f"MAX не нашёл чат или сообщение ({detail}): возможно, гражданин удалил диалог "
            "или сообщение.",
        )
    return PermanentError(
        f"max_{status}",
        f"MAX отклонил ответ ({detail}). Проверьте диалог в MAX и при необходимости ответьте там.",
    )
