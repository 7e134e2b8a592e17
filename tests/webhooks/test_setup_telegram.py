"""Telegram set-up calls against a scripted Bot API: setWebhook with our secret and the
updates the adapter reads, getWebhookInfo read back, the bot's place in the channel's
discussion group."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.webhooks.conftest import FakeApi
from webhooks import PageSecrets, PermanentError, TransientError
from webhooks.setup import get_setup
from webhooks.telegram_setup import ALLOWED_UPDATES, connect

API = "https://tg.test"
TOKEN = "7001:bot-token"
URL = "https://otklik.example.ru/webhooks/telegram/key123"
SECRET = "s3cr3t_Token-1"


def ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def script_connect(api: FakeApi, *, member: str = "administrator", url: str = URL) -> None:
    api.reply(json=ok({"id": 7001, "is_bot": True, "username": "zarechny_bot"}))
    api.reply(
        json=ok(
            {
                "id": -1001987654321,
                "type": "channel",
                "title": "Администрация Заречного округа",
                "username": "zarechny_admin",
                "linked_chat_id": -1001876543210,
            }
        )
    )
    api.reply(json=ok(True))
    api.reply(json=ok({"url": url, "pending_update_count": 0, "allowed_updates": []}))
    api.reply(json=ok({"status": member, "user": {"id": 7001}}))


def test_connect_sets_the_webhook_with_our_secret(api: FakeApi, client: httpx.Client) -> None:
    script_connect(api)
    result = connect(client, API, TOKEN, webhook_url=URL, secret=SECRET, channel="@zarechny_admin")
    paths = [r.url.path for r in api.requests]
    assert paths == [
        f"/bot{TOKEN}/getMe",
        f"/bot{TOKEN}/getChat",
        f"/bot{TOKEN}/setWebhook",
        f"/bot{TOKEN}/getWebhookInfo",
        f"/bot{TOKEN}/getChatMember",
    ]
    assert api.json(1) == {"chat_id": "@zarechny_admin"}
    assert api.json(2) == {
        "url": URL,
        "secret_token": SECRET,
        "allowed_updates": list(ALLOWED_UPDATES),
    }
    assert api.json(4) == {"chat_id": -1001876543210, "user_id": 7001}
    assert result.external_id == "-1001987654321"
    assert result.name == "Администрация Заречного округа"
    assert result.extra["discussion_chat_id"] == "-1001876543210"
    assert all(check.ok for check in result.checks), result.checks


def test_a_bot_that_is_only_a_member_cannot_read_comments(
    api: FakeApi, client: httpx.Client
) -> None:
    script_connect(api, member="member")
    result = connect(client, API, TOKEN, webhook_url=URL, secret=SECRET, channel="-1001987654321")
    assert api.json(1) == {"chat_id": -1001987654321}
    group = result.checks[-1]
    assert not group.ok
    assert "администратором" in group.detail


def test_another_url_registered_is_reported(api: FakeApi, client: httpx.Client) -> None:
    script_connect(api, url="https://elsewhere.example/hook")
    result = connect(client, API, TOKEN, webhook_url=URL, secret=SECRET, channel="@c")
    webhook = next(c for c in result.checks if c.label == "Вебхук зарегистрирован")
    assert not webhook.ok
    assert "elsewhere.example" in webhook.detail


def test_a_wrong_token_is_explained(api: FakeApi, client: httpx.Client) -> None:
    api.reply(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
    with pytest.raises(PermanentError) as error:
        connect(client, API, TOKEN, webhook_url=URL, secret=SECRET, channel="@c")
    assert error.value.code == "token_invalid"
    assert "@BotFather" in error.value.message_ru


def test_a_refused_webhook_url_is_explained(api: FakeApi, client: httpx.Client) -> None:
    api.reply(json=ok({"id": 7001, "is_bot": True}))
    api.reply(json=ok({"id": -100, "type": "channel", "title": "К"}))
    api.reply(
        400,
        json={
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook",
        },
    )
    with pytest.raises(PermanentError) as error:
        connect(client, API, TOKEN, webhook_url="http://x/", secret=SECRET, channel="-100")
    assert error.value.code == "webhook_refused"
    assert "https://" in error.value.message_ru


def test_status_reads_pending_updates_and_the_last_error(
    api: FakeApi, client: httpx.Client
) -> None:
    api.reply(
        json=ok(
            {
                "url": URL,
                "pending_update_count": 14,
                "last_error_date": 1773126000,
                "last_error_message": "Wrong response from the webhook: 503 Service Unavailable",
            }
        )
    )
    api.reply(json=ok({"id": 7001, "is_bot": True}))
    api.reply(json=ok({"id": -100, "type": "channel", "title": "К"}))
    page = PageSecrets("telegram", "key123", "-100", access_token=TOKEN, api_url=API)
    setup = get_setup("telegram")
    assert setup is not None
    status = setup.status(client, page, URL)
    assert status.registered
    assert status.pending == 14
    assert status.last_error and "503" in status.last_error
    assert status.last_error_at is not None and status.last_error_at.year == 2026
    assert not status.checks[0].ok  # the channel has no discussion group


def test_network_failure_is_transient(api: FakeApi, client: httpx.Client) -> None:
    api.fail(httpx.ConnectError("refused"))
    page = PageSecrets("telegram", "k", "-100", access_token=TOKEN, api_url=API)
    setup = get_setup("telegram")
    assert setup is not None
    with pytest.raises(TransientError):
        setup.status(client, page, URL)
