"""Telegram Bot API calls: publishing an operator's reply (sendMessage, in parts), the alert
bot's getMe and getUpdates, and Bot API errors mapped for operators."""

from __future__ import annotations

from collections.abc import Mapping
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
    as_str,
    id_str,
    post,
    response_json,
    split_text,
    utc_from_seconds,
    utf16_len,
)

TELEGRAM_API = "https://api.telegram.org"
TEXT_LIMIT = 4096  # sendMessage text limit (UTF-16 code units after entity parsing)


def reply_problem(page: PageSecrets, ref: Mapping[str, str]) -> str | None:
    if not ref.get("chat_id") or not ref.get("message_id"):
        return "Для этого сообщения нет данных, нужных для ответа. Ответьте в Telegram."
    if not page.access_token:
        return "Для страницы не задан токен бота Telegram. Добавьте его в карточку страницы."
    return None


def publish(client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
    problem = reply_problem(page, reply.reply_ref)
    if problem:
        raise PermanentError("cannot_reply", problem)
    ref = reply.reply_ref
    base, token = api_base(page, TELEGRAM_API), page.access_token or ""
    # In a group a comment deleted by its author must not get an orphaned public answer,
    # so the reply must find its target there; in a private chat the answer still helps.
    private = not ref["chat_id"].startswith("-")
    parts = split_text(reply.text, TEXT_LIMIT, utf16_len)
    first: dict[str, Any] | None = None
    for number, part in enumerate(parts):
        if first is None:
            target, required = int(ref["message_id"]), not private
        else:
            # Later parts answer our own first part, which keeps them in the same thread.
            target, required = int(first["message_id"]), False
        try:
            sent = send_message(
                client,
                base,
                token,
                ref["chat_id"],
                part,
                reply_to=target,
                reply_required=required,
                thread_id=ref.get("message_thread_id"),
            )
        except PermanentError as error:
            if number:
                error.message_ru += f" Первые части ответа ({number}) уже опубликованы."
            raise
        first = first or sent
    assert first is not None  # split_text always yields at least one part
    chat = as_dict(first.get("chat"))
    chat_id = id_str(chat.get("id")) or ref["chat_id"]
    message_id = id_str(first.get("message_id"))
    return Published(
        external_id=message_id,
        source_key=f"tg:{chat_id}:{message_id}",
        sent_at=utc_from_seconds(first.get("date")),
        permalink=_permalink(chat, message_id, ref.get("message_thread_id", "")),
    )


def send_message(
    client: httpx.Client,
    api_url: str,
    token: str,
    chat_id: str,
    text: str,
    *,
    reply_to: int | None = None,
    reply_required: bool = False,
    thread_id: str | None = None,
    link_preview: bool = True,
) -> dict[str, Any]:
    """One Bot API sendMessage of `text` (at most TEXT_LIMIT) to `chat_id` by the bot with
    `token`, at `api_url` (TELEGRAM_API or a test server).

    `reply_to` answers that message of the chat; with `reply_required` the message is not
    sent (PermanentError "reply_target_missing") when the target is gone. `thread_id` is a
    forum topic. Returns the sent Message; raises TransientError (worth retrying) or
    PermanentError (with a Russian explanation for the operator).
    """
    payload: dict[str, Any] = {"chat_id": _chat(chat_id), "text": text}
    if reply_to is not None:
        payload["reply_parameters"] = {
            "message_id": reply_to,
            "allow_sending_without_reply": not reply_required,
        }
    if thread_id:
        payload["message_thread_id"] = int(thread_id)
    if not link_preview:
        payload["disable_web_page_preview"] = True
    return _call(client, f"{api_url.rstrip('/')}/bot{token}/sendMessage", payload)


# --- a bot of Otklik's own (the alert bot): getMe, getUpdates ----------------------------


def get_me(client: httpx.Client, api_url: str, token: str) -> dict[str, Any]:
    """The bot itself (`id`, `username`, ...); raises TransientError or PermanentError."""
    return _call(client, f"{api_url.rstrip('/')}/bot{token}/getMe", {})


def get_updates(
    client: httpx.Client, api_url: str, token: str, offset: int, *, timeout: int = 0
) -> list[dict[str, Any]]:
    """Bot API getUpdates from `offset` (the last update_id seen + 1 confirms the ones
    before it), private messages only. Fails with PermanentError "webhook_set" (409) while
    a webhook is set for the bot: Telegram then delivers updates there instead."""
    url = f"{api_url.rstrip('/')}/bot{token}/getUpdates"
    payload = {"offset": offset, "timeout": timeout, "allowed_updates": ["message"]}
    try:
        result = _call_result(client, url, payload, list_result=True)
    except PermanentError as exc:
        if exc.code == "telegram_409":
            raise PermanentError(
                "webhook_set",
                "У бота уведомлений настроен вебхук, поэтому Отклик не может читать его "
                "сообщения. Используйте для уведомлений отдельного бота, без вебхука.",
            ) from exc
        raise
    return [item for item in as_list(result) if isinstance(item, dict)]


# The t.me link of a message: of our published reply here, of what arrives in telegram.py.
def _permalink(chat: dict[str, Any], message_id: str, thread_id: str) -> str | None:
    if as_str(chat.get("type")) == "private":
        return None
    username = as_str(chat.get("username"))
    chat_id = id_str(chat.get("id"))
    if username:
        base = f"https://t.me/{username}/{message_id}"
    elif chat_id.startswith("-100"):
        base = f"https://t.me/c/{chat_id.removeprefix('-100')}/{message_id}"
    else:
        return None  # basic groups have no message links
    return f"{base}?thread={thread_id}" if thread_id and thread_id != message_id else base


def _chat(chat_id: str) -> int | str:
    number = as_int(chat_id)
    return number if number is not None else chat_id


def _call(client: httpx.Client, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    return as_dict(_call_result(client, url, payload, list_result=False))


def _call_result(
    client: httpx.Client, url: str, payload: dict[str, Any], *, list_result: bool
) -> Any:
    response = post(client, "Telegram", url, json=payload)
    if response.status_code >= 500:
        raise TransientError(f"Telegram: HTTP {response.status_code}")
    answer = as_dict(response_json(response, "Telegram"))
    expected = list if list_result else dict
    if answer.get("ok") is True and isinstance(answer.get("result"), expected):
        return answer["result"]
    code = as_int(answer.get("error_code")) or response.status_code
    description = as_str(answer.get("description"))
    parameters = as_dict(answer.get("parameters"))
    if code == 429:
        retry_after = as_int(parameters.get("retry_after"))
        raise TransientError(
            f"Telegram 429: {description}", float(retry_after) if retry_after else None
        )
    if code >= 500:
        raise TransientError(f"Telegram {code}: {description}")
    raise _permanent(code, description, parameters)


def _permanent(code: int, description: str, parameters: dict[str, Any]) -> PermanentError:
    lowered = description.lower()
    if code in (401, 404):
        return PermanentError(
            "token_invalid",
            "Telegram не принимает токен бота: он неверен или отозван. Получите токен "
            "у @BotFather и обновите его в карточке страницы.",
        )
    if "message to be replied not found" in lowered:
        return PermanentError(
            "reply_target_missing",
            "Сообщение гражданина удалено, поэтому ответить на него нельзя. "
            "Скорее всего, гражданин отозвал вопрос; закройте обращение.",
        )
    if parameters.get("migrate_to_chat_id") is not None:
        return PermanentError(
            "chat_migrated",
            "Группа Telegram была преобразована в супергруппу, и у неё новый идентификатор. "
            "Дождитесь нового сообщения в группе и ответьте на него.",
        )
    if "blocked by the user" in lowered:
        return PermanentError(
            "citizen_blocked",
            "Гражданин заблокировал бота, сообщение ему доставить нельзя.",
        )
    if code == 403 or "not enough rights" in lowered or "chat not found" in lowered:
        return PermanentError(
            "bot_no_access",
            "У бота нет доступа к этому чату: его удалили из группы обсуждения или лишили "
            f"права писать ({description}). Верните бота в группу администратором.",
        )
    if "topic_closed" in lowered:
        return PermanentError(
            "topic_closed", "Тема в группе закрыта. Откройте тему или ответьте в Telegram."
        )
    return PermanentError(
        f"telegram_{code}",
        f"Telegram отклонил ответ ({code}: {description}). Проверьте сообщение в Telegram.",
    )
