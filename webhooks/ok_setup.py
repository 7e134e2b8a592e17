"""OK: subscribe the group's webhook (POST /graph/me/subscribe) and list the group's
subscriptions (GET /graph/me/subscriptions), with the group's access token."""

from __future__ import annotations

from typing import Any

import httpx

from webhooks.base import PageSecrets, PermanentError, api_base, as_dict, as_int, as_list, as_str
from webhooks.ok import OK_API
from webhooks.setup import Check, Connected, WebhookStatus, get_json, post_json

_TOKEN_CODES = frozenset({102, 103, 104})
_JSON = {"Content-Type": "application/json;charset=utf-8"}


def _error(status: int, answer: dict[str, Any]) -> PermanentError:
    code = as_int(answer.get("error_code"))
    text = as_str(answer.get("error_msg")) or f"HTTP {status}"
    if code in _TOKEN_CODES or status == 401:
        return PermanentError(
            "token_invalid",
            "Одноклассники не принимают ключ доступа группы. Получите новый ключ в "
            "настройках группы (Сообщения → Работа с API) и скопируйте его целиком.",
        )
    return PermanentError(
        f"ok_{code}" if code is not None else f"ok_http_{status}",
        f"Одноклассники отклонили подписку ({text}).",
    )


def _failed(status: int, answer: dict[str, Any]) -> bool:
    return status >= 300 or "error_code" in answer


def subscribe(client: httpx.Client, api_url: str, token: str, url: str) -> None:
    status, answer = post_json(
        client,
        "OK",
        f"{api_url.rstrip('/')}/graph/me/subscribe",
        params={"access_token": token},
        json={"url": url},
        headers=_JSON,
    )
    if _failed(status, answer) or answer.get("success") is not True:
        raise _error(status, answer)


def subscription_urls(client: httpx.Client, api_url: str, token: str) -> list[str]:
    status, answer = get_json(
        client,
        "OK",
        f"{api_url.rstrip('/')}/graph/me/subscriptions",
        params={"access_token": token},
    )
    if _failed(status, answer):
        raise _error(status, answer)
    # The list's field name is not documented (unverified): "subscriptions" or "data".
    items = as_list(answer.get("subscriptions")) or as_list(answer.get("data"))
    return [as_str(as_dict(item).get("url")) for item in items if as_dict(item).get("url")]


def _status(urls: list[str], webhook_url: str) -> WebhookStatus:
    registered = webhook_url in urls
    detail = webhook_url if registered else "Адреса Отклика нет среди подписок группы."
    return WebhookStatus(
        registered_url=webhook_url if registered else "",
        registered=registered,
        checks=(Check("Подписка на сообщения группы", registered, detail),),
    )


def connect(
    client: httpx.Client, api_url: str, token: str, *, webhook_url: str, group_id: str
) -> Connected:
    """Subscribe `webhook_url` and read the subscriptions back."""
    subscribe(client, api_url, token, webhook_url)
    status = _status(subscription_urls(client, api_url, token), webhook_url)
    return Connected(external_id=group_id.strip(), name="", checks=status.checks)


class OkSetup:
    name = "ok"

    def status(self, client: httpx.Client, page: PageSecrets, webhook_url: str) -> WebhookStatus:
        if not page.access_token:
            raise PermanentError("no_token", "Для страницы не задан ключ доступа группы.")
        return _status(
            subscription_urls(client, api_base(page, OK_API), page.access_token), webhook_url
        )
