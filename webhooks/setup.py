"""Connecting a page: the platform calls that register Otklik's webhook, and the
platform's own view of it afterwards (for the page's connection health).

Pure like the adapters: no database, no import from app/. Each platform's calls live
in `webhooks/<platform>_setup.py`; the app reaches them through `get_setup(platform)`.
Failures raise the adapters' error types: `PermanentError` with a Russian explanation
for the administrator (a wrong token, missing rights), `TransientError` when the
platform could not be reached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from webhooks.base import (
    PageSecrets,
    PermanentError,
    TransientError,
    as_dict,
    response_json,
    retry_after_header,
)
from webhooks.generic import sign


@dataclass(frozen=True, slots=True)
class Check:
    """One line of what a platform told us: «Вебхук зарегистрирован» — ok or not, why."""

    label: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WebhookStatus:
    """The platform's view of our webhook for one page (None where it does not say)."""

    registered_url: str | None  # the URL the platform delivers to ("" when none)
    registered: bool  # our URL is the one registered
    pending: int | None = None  # updates waiting to be delivered (Telegram)
    last_error: str | None = None
    last_error_at: datetime | None = None
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True, slots=True)
class Connected:
    """What connecting did: the facts learnt (ids, names) and each step's outcome."""

    external_id: str  # the platform's id of the page (api.md)
    name: str  # the page's name on the platform ("" when it does not say)
    checks: tuple[Check, ...]
    # Anything the page must keep to answer the platform (VK: the confirmation code).
    confirmation_code: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


class PlatformSetup(Protocol):
    name: str

    def status(self, client: httpx.Client, page: PageSecrets, webhook_url: str) -> WebhookStatus:
        """The platform's view of the page's webhook; raises Transient/PermanentError."""
        ...


# Sample reply targets per platform: what the health panel asks the adapter's
# `can_reply` about ("can a reply to a comment / a private message be published?").
REPLY_SAMPLES: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "vk": (
        (
            "Комментарии на стене",
            {"method": "wall", "owner_id": "-1", "post_id": "1", "comment_id": "1"},
        ),
        ("Личные сообщения", {"method": "messages", "peer_id": "1"}),
        ("Обсуждения, фото, видео, товары", {"method": "board", "group_id": "1", "topic_id": "1"}),
    ),
    "telegram": (("Комментарии и личные сообщения", {"chat_id": "-1", "message_id": "1"}),),
    "ok": (("Сообщения группе", {"chat_id": "chat:1"}),),
    "max": (("Сообщения боту", {"user_id": "1", "mid": "mid.1"}),),
    "generic": (("Ответы", {}),),
}


def get_json(
    client: httpx.Client, platform: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """GET through the shared client: (status, JSON object); network failures and 5xx
    become TransientError."""
    try:
        response = client.get(url, **kwargs)
    except httpx.TransportError as exc:
        raise TransientError(f"{platform}: {type(exc).__name__}: {exc}") from exc
    return _answer(response, platform)


def post_json(
    client: httpx.Client, platform: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """POST through the shared client: (status, JSON object), like `get_json`."""
    try:
        response = client.post(url, **kwargs)
    except httpx.TransportError as exc:
        raise TransientError(f"{platform}: {type(exc).__name__}: {exc}") from exc
    return _answer(response, platform)


def _answer(response: httpx.Response, platform: str) -> tuple[int, dict[str, Any]]:
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"{platform}: HTTP {response.status_code}", retry_after_header(response)
        )
    return response.status_code, as_dict(response_json(response, platform))


UNREACHABLE_RU = "{platform} сейчас не отвечает ({detail}). Подождите минуту и попробуйте ещё раз."


def explain(error: Exception, platform_ru: str) -> str:
    """A Russian sentence for the page about a failed platform call."""
    if isinstance(error, PermanentError):
        return error.message_ru
    return UNREACHABLE_RU.format(platform=platform_ru, detail=str(error))


def get_setup(platform: str) -> PlatformSetup | None:
    """The set-up calls of a platform (None for the generic source: nothing to call)."""
    from webhooks.max_setup import MaxSetup
    from webhooks.ok_setup import OkSetup
    from webhooks.telegram_setup import TelegramSetup
    from webhooks.vk_setup import VkSetup

    setups: dict[str, PlatformSetup] = {
        "vk": VkSetup(),
        "telegram": TelegramSetup(),
        "ok": OkSetup(),
        "max": MaxSetup(),
    }
    return setups.get(platform)


# --- a test delivery ---------------------------------------------------------------------


TEST_TYPE = "otklik_test"


def test_delivery(page: PageSecrets, nonce: int, now: datetime) -> tuple[dict[str, str], bytes]:
    """Headers (lower-case) and body of a delivery shaped and signed like the platform's
    own, of a type the adapter records as ignored: «send a test event» runs it through
    the receiver's checks and processing without creating a question. `nonce` (a
    positive int) makes its delivery key unique; Telegram's is negative, so it can
    never take the key of a real update."""
    millis = int(now.timestamp() * 1000)
    headers: dict[str, str] = {"content-type": "application/json"}
    data: dict[str, Any]
    if page.platform == "vk":
        data = {
            "type": TEST_TYPE,
            "event_id": f"{TEST_TYPE}_{nonce}",
            "v": "5.199",
            "group_id": int(page.external_id.strip().removeprefix("-") or 0),
            "object": {"nonce": nonce},
            "secret": page.secret or "",
        }
    elif page.platform == "telegram":
        data = {"update_id": -nonce, TEST_TYPE: {"nonce": nonce}}
        headers["x-telegram-bot-api-secret-token"] = page.secret or ""
    elif page.platform == "max":
        data = {"update_type": TEST_TYPE, "timestamp": millis, "message_id": f"test-{nonce}"}
        headers["x-max-bot-api-secret"] = page.secret or ""
    elif page.platform == "ok":
        data = {"webhookType": TEST_TYPE.upper(), "timestamp": millis, "nonce": nonce}
    else:
        data = {"id": f"{TEST_TYPE}_{nonce}", "kind": "test", "sent_at": now.isoformat()}
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    if page.platform == "generic":
        headers["x-otklik-signature"] = sign(page.secret or "", body)
    return headers, body
