"""MAX: subscribe the bot's webhook (POST /subscriptions with our secret) and read the
subscriptions back (GET /subscriptions). The token goes in the Authorization header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from webhooks.base import PageSecrets, PermanentError, api_base, as_dict, as_list, as_str, id_str
from webhooks.max import MAX_API
from webhooks.setup import Check, Connected, WebhookStatus, get_json, post_json

# What webhooks/max.py reads: messages (new, edited, removed) and channel comments.
UPDATE_TYPES = (
    "message_created",
    "message_edited",
    "message_removed",
    "comment_created",
    "comment_edited",
    "comment_removed",
)


@dataclass(frozen=True, slots=True)
class Subscription:
    url: str
    update_types: tuple[str, ...]


def _error(status: int, answer: dict[str, Any]) -> PermanentError:
    detail = as_str(answer.get("message")) or as_str(answer.get("code")) or f"HTTP {status}"
    if status == 401:
        return PermanentError(
            "token_invalid",
            "MAX не принимает токен бота. Скопируйте токен на платформе MAX для бизнеса "
            "(Чат-боты → Настройки) целиком и попробуйте ещё раз.",
        )
    return PermanentError(
        f"max_{status}",
        f"MAX отклонил подписку ({detail}). Адрес вебхука должен начинаться с https:// "
        "и иметь сертификат доверенного центра.",
    )


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": token}


def get_me(client: httpx.Client, api_url: str, token: str) -> dict[str, Any]:
    """The bot (`user_id`, `name`, `username`)."""
    status, answer = get_json(client, "MAX", f"{api_url.rstrip('/')}/me", headers=_headers(token))
    if status >= 300:
        raise _error(status, answer)
    return answer


def subscribe(client: httpx.Client, api_url: str, token: str, url: str, secret: str) -> None:
    """POST /subscriptions: deliver UPDATE_TYPES to `url` with X-Max-Bot-Api-Secret."""
    status, answer = post_json(
        client,
        "MAX",
        f"{api_url.rstrip('/')}/subscriptions",
        json={"url": url, "secret": secret, "update_types": list(UPDATE_TYPES)},
        headers=_headers(token),
    )
    if status >= 300 or answer.get("success") is not True:
        raise _error(status, answer)


def subscriptions(client: httpx.Client, api_url: str, token: str) -> list[Subscription]:
    status, answer = get_json(
        client, "MAX", f"{api_url.rstrip('/')}/subscriptions", headers=_headers(token)
    )
    if status >= 300:
        raise _error(status, answer)
    return [
        Subscription(
            url=as_str(as_dict(item).get("url")),
            update_types=tuple(as_str(t) for t in as_list(as_dict(item).get("update_types"))),
        )
        for item in as_list(answer.get("subscriptions"))
    ]


def _status(found: list[Subscription], webhook_url: str) -> WebhookStatus:
    ours = next((s for s in found if s.url == webhook_url), None)
    others = [s.url for s in found if s.url != webhook_url]
    checks = [
        Check(
            "Подписка на события",
            ours is not None,
            ", ".join(ours.update_types) if ours else "Адреса Отклика нет среди подписок бота.",
        )
    ]
    if others:
        # Subscriptions accumulate in MAX: another one receives the same updates.
        checks.append(Check("Другие подписки бота", False, ", ".join(others)))
    return WebhookStatus(
        registered_url=ours.url if ours else "", registered=ours is not None, checks=tuple(checks)
    )


def connect(
    client: httpx.Client, api_url: str, token: str, *, webhook_url: str, secret: str, chat_id: str
) -> Connected:
    """Subscribe and check: GET /me, POST /subscriptions, GET /subscriptions. The page's
    id is `chat_id` (a channel) or, for a bot without a channel, the bot's user id."""
    bot = get_me(client, api_url, token)
    subscribe(client, api_url, token, webhook_url, secret)
    status = _status(subscriptions(client, api_url, token), webhook_url)
    name = as_str(bot.get("name")) or as_str(bot.get("username"))
    return Connected(
        external_id=chat_id.strip() or id_str(bot.get("user_id")),
        name=name,
        checks=(Check("Бот", True, name), *status.checks),
    )


class MaxSetup:
    name = "max"

    def status(self, client: httpx.Client, page: PageSecrets, webhook_url: str) -> WebhookStatus:
        if not page.access_token:
            raise PermanentError("no_token", "Для страницы не задан токен бота MAX.")
        found = subscriptions(client, api_base(page, MAX_API), page.access_token)
        return _status(found, webhook_url)
