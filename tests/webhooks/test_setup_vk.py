"""VK set-up calls against a scripted VK API: the confirmation code and the token's
rights first, then the Callback server with our secret, its events in API 5.199, and
whether VK confirmed it."""

from __future__ import annotations

import httpx
import pytest

from tests.webhooks.conftest import FakeApi
from webhooks import PageSecrets, PermanentError
from webhooks.setup import get_setup
from webhooks.vk_setup import EVENTS, SERVER_TITLE, prepare, register

API = "https://vk.test"
TOKEN = "vk1.a.community-token"
URL = "https://otklik.example.ru/webhooks/vk/key123"


def test_prepare_reads_code_name_and_rights(api: FakeApi, client: httpx.Client) -> None:
    api.reply(
        json={"response": {"mask": 262144, "permissions": [{"setting": 262144, "name": "manage"}]}}
    )
    api.reply(json={"response": {"groups": [{"id": 218734591, "name": "Администрация"}]}})
    api.reply(json={"response": {"code": "a1b2c3d4"}})
    prepared = prepare(client, API, TOKEN, "-218734591")
    assert [r.url.path for r in api.requests] == [
        "/method/groups.getTokenPermissions",
        "/method/groups.getById",
        "/method/groups.getCallbackConfirmationCode",
    ]
    assert api.form(2) == {"group_id": "218734591", "v": "5.199"}
    assert api.requests[2].headers["authorization"] == f"Bearer {TOKEN}"
    assert prepared.confirmation_code == "a1b2c3d4"
    assert prepared.name == "Администрация"
    assert prepared.can_register


def test_register_adds_the_server_and_turns_on_events(api: FakeApi, client: httpx.Client) -> None:
    api.reply(json={"response": {"count": 0, "items": []}})
    api.reply(json={"response": {"server_id": 4}})
    api.reply(json={"response": 1})
    api.reply(
        json={
            "response": {
                "count": 1,
                "items": [
                    {"id": 4, "title": "Otklik", "url": URL, "status": "ok", "secret_key": "sk"}
                ],
            }
        }
    )
    connected = register(client, API, TOKEN, "218734591", webhook_url=URL, secret="sk")
    assert api.form(1) == {
        "group_id": "218734591",
        "url": URL,
        "title": SERVER_TITLE,
        "secret_key": "sk",
        "v": "5.199",
    }
    settings = api.form(2)
    assert api.requests[2].url.path == "/method/groups.setCallbackSettings"
    assert settings["server_id"] == "4"
    assert settings["api_version"] == "5.199"
    assert {"wall_reply_new", "message_new", "message_reply", "wall_reply_delete"} <= set(settings)
    assert all(settings[event] == "1" for event in EVENTS)
    assert all(check.ok for check in connected.checks)
    assert connected.extra["server_id"] == "4"


def test_register_updates_the_server_already_there(api: FakeApi, client: httpx.Client) -> None:
    existing = {"id": 2, "title": "Old", "url": URL, "status": "failed", "secret_key": "old"}
    api.reply(json={"response": {"count": 1, "items": [existing]}})
    api.reply(json={"response": 1})
    api.reply(json={"response": 1})
    api.reply(json={"response": {"count": 1, "items": [{**existing, "status": "wait"}]}})
    connected = register(client, API, TOKEN, "218734591", webhook_url=URL, secret="new")
    assert api.requests[1].url.path == "/method/groups.editCallbackServer"
    assert api.form(1)["server_id"] == "2"
    assert api.form(1)["secret_key"] == "new"
    server = connected.checks[-1]
    assert not server.ok
    assert "ждёт подтверждения" in server.detail


def test_a_token_without_manage_rights_is_explained(api: FakeApi, client: httpx.Client) -> None:
    api.reply(
        json={
            "error": {"error_code": 15, "error_msg": "Access denied: no access to call this method"}
        }
    )
    with pytest.raises(PermanentError) as error:
        register(client, API, TOKEN, "218734591", webhook_url=URL, secret="sk")
    assert error.value.code == "no_manage"
    assert "Управление сообществом" in error.value.message_ru


def test_status_finds_our_server(api: FakeApi, client: httpx.Client) -> None:
    api.reply(
        json={
            "response": {
                "count": 2,
                "items": [
                    {"id": 1, "url": "https://other.example/cb", "status": "ok"},
                    {"id": 3, "url": URL, "status": "failed"},
                ],
            }
        }
    )
    page = PageSecrets("vk", "key123", "218734591", access_token=TOKEN, api_url=API)
    setup = get_setup("vk")
    assert setup is not None
    status = setup.status(client, page, URL)
    assert not status.registered
    assert status.last_error and "не получил код" in status.last_error
