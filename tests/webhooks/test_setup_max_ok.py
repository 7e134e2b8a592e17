"""MAX and OK set-up calls against scripted APIs: the subscription with our URL (and, for
MAX, our secret), read back from the subscriptions list."""

from __future__ import annotations

import httpx
import pytest

from tests.webhooks.conftest import FakeApi
from webhooks import PageSecrets, PermanentError
from webhooks.max_setup import UPDATE_TYPES
from webhooks.max_setup import connect as connect_max
from webhooks.ok_setup import connect as connect_ok
from webhooks.setup import get_setup

URL = "https://otklik.example.ru/webhooks/max/key123"


def test_max_subscribes_with_the_secret(api: FakeApi, client: httpx.Client) -> None:
    api.reply(json={"user_id": 91234567, "name": "Бот администрации", "is_bot": True})
    api.reply(json={"success": True})
    api.reply(
        json={"subscriptions": [{"url": URL, "time": 1, "update_types": ["message_created"]}]}
    )
    result = connect_max(
        client, "https://max.test", "max-token", webhook_url=URL, secret="sec_12345", chat_id=""
    )
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/me"),
        ("POST", "/subscriptions"),
        ("GET", "/subscriptions"),
    ]
    assert all(r.headers["authorization"] == "max-token" for r in api.requests)
    assert api.json(1) == {"url": URL, "secret": "sec_12345", "update_types": list(UPDATE_TYPES)}
    assert result.external_id == "91234567"  # no channel given: the bot's dialogs
    assert result.name == "Бот администрации"
    assert all(c.ok for c in result.checks)


def test_max_refusal_and_wrong_token(api: FakeApi, client: httpx.Client) -> None:
    api.reply(401, json={"code": "verify.token", "message": "Invalid access_token"})
    with pytest.raises(PermanentError) as error:
        connect_max(client, "https://max.test", "bad", webhook_url=URL, secret="s", chat_id="")
    assert error.value.code == "token_invalid"
    api.reply(json={"user_id": 1})
    api.reply(json={"success": False, "message": "url must be https"})
    with pytest.raises(PermanentError) as refused:
        connect_max(client, "https://max.test", "t", webhook_url=URL, secret="s", chat_id="-5")
    assert "url must be https" in refused.value.message_ru


def test_max_status_warns_of_other_subscriptions(api: FakeApi, client: httpx.Client) -> None:
    api.reply(json={"subscriptions": [{"url": "https://old.example/h"}, {"url": URL}]})
    page = PageSecrets("max", "key123", "1", access_token="t", api_url="https://max.test")
    setup = get_setup("max")
    assert setup is not None
    status = setup.status(client, page, URL)
    assert status.registered
    assert [c.ok for c in status.checks] == [True, False]


def test_ok_subscribes_the_url(api: FakeApi, client: httpx.Client) -> None:
    url = "https://otklik.example.ru/webhooks/ok/key123"
    api.reply(json={"success": True})
    api.reply(json={"subscriptions": [{"url": url, "time": 1760000000000}]})
    result = connect_ok(client, "https://ok.test", "ok-token", webhook_url=url, group_id="5700")
    first = api.requests[0]
    assert (first.method, first.url.path) == ("POST", "/graph/me/subscribe")
    assert first.url.params["access_token"] == "ok-token"
    assert first.headers["content-type"] == "application/json;charset=utf-8"
    assert api.json(0) == {"url": url}
    assert api.requests[1].url.path == "/graph/me/subscriptions"
    assert result.external_id == "5700"
    assert result.checks[0].ok


def test_ok_expired_token(api: FakeApi, client: httpx.Client) -> None:
    api.reply(json={"error_code": 102, "error_msg": "PARAM_SESSION_EXPIRED"})
    page = PageSecrets("ok", "k", "5700", access_token="old", api_url="https://ok.test")
    setup = get_setup("ok")
    assert setup is not None
    with pytest.raises(PermanentError) as error:
        setup.status(client, page, "https://x/")
    assert error.value.code == "token_invalid"
