"""OK (Odnoklassniki) group messages: Bot API webhook in, Graph API out (docs/platforms.md, 3).

OK signs nothing: the long random page key in the webhook URL is the secret (the app may add
an allow-list of OK's networks). Messages written by the group itself are not delivered.
"""

from __future__ import annotations

import hashlib
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
    api_base,
    as_dict,
    as_int,
    as_list,
    as_str,
    id_str,
    ignored,
    normalize_staff,
    parse_json,
    post,
    response_json,
    retry_after_header,
    utc_from_millis,
)
from webhooks.events import Attachment, EventKind, InboundEvent, ThreadKind

OK_API = "https://api.ok.ru"

# OK API error codes (error_code) worth retrying: UNKNOWN, SERVICE, FLOOD_BLOCKED, SYSTEM.
_TRANSIENT_CODES = frozenset({1, 2, 8, 9999})
_TOKEN_CODES = frozenset({102, 103, 104})  # session expired / invalid session key / signature


class OkAdapter:
    name = "ok"

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        # No signature exists; the unguessable page key in the URL authenticates the sender.
        return None

    def delivery_key(self, body: bytes) -> str:
        data = parse_json(body)
        mid = as_str(as_dict(data.get("message")).get("mid"))
        if mid:
            return mid
        # Events without a message (system events) still need a stable key for deduplication.
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        return Ack(body="")

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        data = parse_json(body)
        webhook_type = as_str(data.get("webhookType"))
        message = as_dict(data.get("message"))
        sender = as_dict(data.get("sender"))
        sent_at = utc_from_millis(data.get("timestamp")) or received_at
        is_new = webhook_type == "MESSAGE_CREATED" or (not webhook_type and message and sender)
        raw_type = webhook_type or ("MESSAGE_CREATED" if is_new else "unknown")
        if not is_new:
            return [ignored(raw_type, f"ok:event:{self.delivery_key(body)}", sent_at)]
        mid = as_str(message.get("mid"))
        chat_id = as_str(as_dict(data.get("recipient")).get("chat_id"))
        if not mid or not chat_id:
            raise Malformed("message.mid and recipient.chat_id are required")
        author_id = id_str(sender.get("user_id"))
        is_staff = author_id in normalize_staff(page)
        return [
            InboundEvent(
                kind=EventKind.page_reply if is_staff else EventKind.citizen_message,
                source_key=f"ok:{mid}",
                thread_key=f"ok:{chat_id}",
                thread_kind=ThreadKind.message,
                author_id=author_id,
                author_name=as_str(sender.get("name")),
                text=as_str(message.get("text")),
                sent_at=sent_at,
                attachments=_attachments(message),
                reply_ref={"chat_id": chat_id, "mid": mid},
                raw_type=raw_type,
            )
        ]

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        if not reply_ref.get("chat_id"):
            return "Для этого сообщения нет данных, нужных для ответа. Ответьте в Одноклассниках."
        if not page.access_token:
            return (
                "Для страницы не задан ключ доступа группы в Одноклассниках. Получите его "
                "в настройках группы (Сообщения → Работа с API) и добавьте в карточку страницы."
            )
        return None

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        problem = self.can_reply(page, reply.reply_ref)
        if problem:
            raise PermanentError("cannot_reply", problem)
        chat_id = reply.reply_ref["chat_id"]
        response = post(
            client,
            "OK",
            f"{api_base(page, OK_API)}/graph/me/messages/{chat_id}",
            params={"access_token": page.access_token or ""},
            json={"recipient": {"chat_id": chat_id}, "message": {"text": reply.text}},
            headers={"Content-Type": "application/json;charset=utf-8"},
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"OK: HTTP {response.status_code}", retry_after_header(response))
        answer = as_dict(response_json(response, "OK"))
        if "error_code" in answer or response.status_code >= 400:
            raise _error(answer, response.status_code)
        # The answer's shape is not documented (unverified): accept a message id under the
        # usual names; without one the reply still went out (OK never echoes it anyway).
        message_id = next(
            (as_str(answer.get(k)) for k in ("message_id", "mid") if as_str(answer.get(k))),
            as_str(as_dict(answer.get("message")).get("mid")),
        )
        if answer.get("success") is False:
            raise _error(answer, response.status_code)
        return Published(
            external_id=message_id,
            source_key=f"ok:{message_id}" if message_id else f"ok:out:{reply.id}",
            sent_at=None,  # the answer carries no time; the caller records its clock
        )


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    items = as_list(message.get("attachments"))
    if not items and isinstance(message.get("attachment"), dict):
        items = [message["attachment"]]
    result: list[Attachment] = []
    for raw in items:
        item = as_dict(raw)
        kind = as_str(item.get("type")).lower()
        if not kind:
            continue
        payload = as_dict(item.get("payload"))
        ref = id_str(payload.get("id")) or as_str(payload.get("token"))
        result.append(Attachment(kind, url=as_str(payload.get("url")) or None, id=ref or None))
    return tuple(result)


def _error(answer: dict[str, Any], status: int) -> TransientError | PermanentError:
    code = as_int(answer.get("error_code"))
    text = as_str(answer.get("error_msg")) or f"HTTP {status}"
    if code in _TRANSIENT_CODES:
        return TransientError(f"OK error {code}: {text}")
    if code in _TOKEN_CODES or status == 401:
        return PermanentError(
            "token_invalid",
            "Одноклассники не принимают ключ доступа группы: он истёк (30 дней без "
            "использования) или был заменён новым. Получите новый ключ в настройках группы "
            "(Сообщения → Работа с API) и обновите его в карточке страницы.",
        )
    if code == 10 or status == 403:
        return PermanentError(
            "no_permission",
            "Одноклассники запретили отправку: у ключа нет прав писать в этот чат "
            "или пользователь запретил сообщения от группы.",
        )
    return PermanentError(
        f"ok_{code}" if code is not None else f"ok_http_{status}",
        f"Одноклассники отклонили ответ ({text}). Проверьте чат в Одноклассниках "
        "и при необходимости ответьте там.",
    )
