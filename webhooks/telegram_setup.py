"""Telegram: register the bot's webhook (setWebhook with our secret_token), read it back
(getWebhookInfo), and tell whether the bot can read the channel's comments (getChat for
the linked discussion group, getChatMember for the bot's place in it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from webhooks.base import (
    PageSecrets,
    PermanentError,
    TransientError,
    api_base,
    as_dict,
    as_int,
    as_list,
    as_str,
    id_str,
    post,
    response_json,
    utc_from_seconds,
)
from webhooks.setup import Check, Connected, WebhookStatus
from webhooks.telegram_api import TELEGRAM_API, _permanent

# The updates the adapter reads (webhooks/telegram.py); nothing else is asked for.
ALLOWED_UPDATES = ("message", "edited_message", "channel_post", "edited_channel_post")
_ADMIN_STATUSES = frozenset({"administrator", "creator"})


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    url: str
    pending_update_count: int
    last_error_date: int | None
    last_error_message: str
    allowed_updates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    title: str
    type: str
    username: str
    linked_chat_id: str  # a channel's discussion group ("" when none)


def _method(api_url: str, token: str, method: str) -> str:
    return f"{api_url.rstrip('/')}/bot{token}/{method}"


def _setup_call(
    client: httpx.Client, api_url: str, token: str, method: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """One Bot API call; a `true` result (setWebhook) reads as an empty object."""
    response = post(client, "Telegram", _method(api_url, token, method), json=payload)
    if response.status_code >= 500:
        raise TransientError(f"Telegram: HTTP {response.status_code}")
    answer = as_dict(response_json(response, "Telegram"))
    if answer.get("ok") is True:
        return as_dict(answer.get("result"))
    code = as_int(answer.get("error_code")) or response.status_code
    description = as_str(answer.get("description"))
    if code == 429 or code >= 500:
        raise TransientError(f"Telegram {code}: {description}")
    error = _permanent(code, description, as_dict(answer.get("parameters")))
    raise _setup_error(method, error, description)


def _setup_error(method: str, error: PermanentError, description: str) -> PermanentError:
    if error.code == "token_invalid":
        return PermanentError(
            "token_invalid",
            "Telegram не принимает токен бота. Скопируйте токен у @BotFather целиком "
            "(вида 123456789:AA…) и попробуйте ещё раз.",
        )
    if method == "setWebhook":
        return PermanentError(
            "webhook_refused",
            f"Telegram не принял адрес вебхука ({description}). Адрес должен начинаться с https:// "
            "и быть доступен из интернета (настройка OTKLIK_BASE_URL).",
        )
    if method == "getChat":
        return PermanentError(
            "chat_not_found",
            "Telegram не нашёл канал. Укажите @имя канала или его числовой id "
            "и добавьте бота в канал администратором.",
        )
    return error


def get_me(client: httpx.Client, api_url: str, token: str) -> dict[str, Any]:
    """The bot (`id`, `username`, `can_read_all_group_messages`, ...)."""
    return _setup_call(client, api_url, token, "getMe", {})


def set_webhook(client: httpx.Client, api_url: str, token: str, url: str, secret: str) -> None:
    """setWebhook: deliver the updates the adapter reads to `url`, each with our secret
    in X-Telegram-Bot-Api-Secret-Token. Pending updates are kept (not dropped)."""
    _setup_call(
        client,
        api_url,
        token,
        "setWebhook",
        {"url": url, "secret_token": secret, "allowed_updates": list(ALLOWED_UPDATES)},
    )


def get_webhook_info(client: httpx.Client, api_url: str, token: str) -> WebhookInfo:
    info = _setup_call(client, api_url, token, "getWebhookInfo", {})
    return WebhookInfo(
        url=as_str(info.get("url")),
        pending_update_count=as_int(info.get("pending_update_count")) or 0,
        last_error_date=as_int(info.get("last_error_date")),
        last_error_message=as_str(info.get("last_error_message")),
        allowed_updates=tuple(as_str(u) for u in as_list(info.get("allowed_updates"))),
    )


def get_chat(client: httpx.Client, api_url: str, token: str, chat: str) -> Chat:
    """A chat by numeric id or @username."""
    ref: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
    found = _setup_call(client, api_url, token, "getChat", {"chat_id": ref})
    return Chat(
        id=id_str(found.get("id")),
        title=as_str(found.get("title")),
        type=as_str(found.get("type")),
        username=as_str(found.get("username")),
        linked_chat_id=id_str(found.get("linked_chat_id")),
    )


def member_status(
    client: httpx.Client, api_url: str, token: str, chat_id: str, user_id: str
) -> str:
    """getChatMember's status: creator, administrator, member, restricted, left, kicked."""
    member = _setup_call(
        client,
        api_url,
        token,
        "getChatMember",
        {"chat_id": int(chat_id), "user_id": int(user_id)},
    )
    return as_str(member.get("status"))


def _group_checks(
    client: httpx.Client, api_url: str, token: str, bot: dict[str, Any], channel: Chat
) -> list[Check]:
    if not channel.linked_chat_id:
        return [
            Check(
                "Группа обсуждения",
                False,
                "У канала нет группы для комментариев: Отклик получит только личные "
                "сообщения боту. Подключите группу обсуждения в настройках канала.",
            )
        ]
    status = member_status(client, api_url, token, channel.linked_chat_id, id_str(bot.get("id")))
    if status in _ADMIN_STATUSES:
        return [Check("Бот — администратор группы обсуждения", True, "Комментарии будут видны.")]
    if status in ("member", "restricted") and bot.get("can_read_all_group_messages") is True:
        return [
            Check(
                "Бот в группе обсуждения",
                True,
                "Бот не администратор, но режим приватности выключен: комментарии видны.",
            )
        ]
    return [
        Check(
            "Бот — администратор группы обсуждения",
            False,
            "Бот не видит комментарии: добавьте его администратором в группу обсуждения "
            "канала" + (f" (сейчас: {status})." if status else "."),
        )
    ]


def connect(
    client: httpx.Client,
    api_url: str,
    token: str,
    *,
    webhook_url: str,
    secret: str,
    channel: str,
    chat: Chat | None = None,
) -> Connected:
    """Register the webhook of the bot with `token` and check it: getMe, getChat
    (`channel`: @username or id; skipped when `chat` was read already), setWebhook, getWebhookInfo, getChatMember in the
    channel's discussion group. Raises PermanentError (wrong token, unknown channel,
    refused URL) or TransientError."""
    bot = get_me(client, api_url, token)
    target = chat or get_chat(client, api_url, token, channel)
    set_webhook(client, api_url, token, webhook_url, secret)
    info = get_webhook_info(client, api_url, token)
    checks = [
        Check("Бот", True, "@" + as_str(bot.get("username")) if bot.get("username") else ""),
        Check("Канал", True, target.title or target.id),
        Check(
            "Вебхук зарегистрирован",
            info.url == webhook_url,
            info.url if info.url == webhook_url else f"Telegram доставляет на {info.url or '—'}",
        ),
    ]
    checks += _group_checks(client, api_url, token, bot, target)
    return Connected(
        external_id=target.id,
        name=target.title,
        checks=tuple(checks),
        extra={"discussion_chat_id": target.linked_chat_id, "username": target.username},
    )


class TelegramSetup:
    name = "telegram"

    def status(self, client: httpx.Client, page: PageSecrets, webhook_url: str) -> WebhookStatus:
        token = page.access_token or ""
        if not token:
            raise PermanentError("no_token", "Для страницы не задан токен бота Telegram.")
        base = api_base(page, TELEGRAM_API)
        info = get_webhook_info(client, base, token)
        checks: list[Check] = []
        if page.external_id:
            bot = get_me(client, base, token)
            checks += _group_checks(
                client, base, token, bot, get_chat(client, base, token, page.external_id)
            )
        return WebhookStatus(
            registered_url=info.url,
            registered=info.url == webhook_url,
            pending=info.pending_update_count,
            last_error=info.last_error_message or None,
            last_error_at=utc_from_seconds(info.last_error_date),
            checks=tuple(checks),
        )
