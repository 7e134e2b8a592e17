"""Connecting a page in the browser: the wizard's steps, the platform's set-up calls
against fakes, the page saved with its secret encrypted (shown once), the audit log,
refusals explained without losing what was typed, and 404 for everyone but admins."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import AuditEvent, Role, User
from app.directory.models import Institution, Page, Platform
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import cipher, make_institution, make_page

Handler = Callable[[httpx.Request], httpx.Response]
TOKEN = "7001:AAbot-token-secret-part"
CHANNEL = -1001987654321


def sign_in(client: TestClient, user: User) -> str:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/connect").text)
    assert found
    return found.group(1)


class FakeBotApi:
    def __init__(self, *, status: str = "administrator", fail: int | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.status = status
        self.fail = fail
        self.webhook = ""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.telegram.org"
        assert request.url.path.startswith(f"/bot{TOKEN}/")
        method = request.url.path.rsplit("/", 1)[1]
        payload = json.loads(request.content or b"{}")
        self.calls.append((method, payload))
        if self.fail:
            return httpx.Response(
                self.fail,
                json={"ok": False, "error_code": self.fail, "description": "Unauthorized"},
            )
        results: dict[str, Any] = {
            "getMe": {"id": 7001, "is_bot": True, "username": "zarechny_bot"},
            "getChat": {
                "id": CHANNEL,
                "type": "channel",
                "title": "Администрация Заречного округа",
                "linked_chat_id": -1001876543210,
            },
            "setWebhook": True,
            "getWebhookInfo": {"url": self.webhook, "pending_update_count": 0},
            "getChatMember": {"status": self.status},
        }
        if method == "setWebhook":
            self.webhook = payload["url"]
            results["setWebhook"] = True
        return httpx.Response(200, json={"ok": True, "result": results[method]})

    def payload(self, method: str) -> dict[str, Any]:
        return next(p for m, p in self.calls if m == method)


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, Role.admin)


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session, name="Администрация Заречного округа")


def _form(institution: Institution, step: str, csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, "step": step, "institution_id": str(institution.id), **fields}


def test_telegram_wizard_sets_the_webhook_and_saves_the_page(
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    bot = FakeBotApi()
    http_handler.append(bot)
    csrf = sign_in(client, admin)
    start = client.get("/admin/connect")
    assert start.status_code == 200
    assert 'href="/admin/connect/telegram"' in start.text
    form = client.get(f"/admin/connect/telegram?institution_id={institution.id}")
    assert f'<option value="{institution.id}" selected>' in form.text

    fields = {"token": TOKEN, "target": "@zarechny_admin", "name": ""}
    check = client.post("/admin/connect/telegram", data=_form(institution, "check", csrf, **fields))
    assert check.status_code == 200
    assert "Проверьте данные" in check.text
    assert "••••" + TOKEN[-4:] in check.text
    assert check.headers["cache-control"] == "no-store"
    assert not bot.calls  # nothing is called before «Подключить»
    back = client.post("/admin/connect/telegram", data=_form(institution, "edit", csrf, **fields))
    assert 'value="@zarechny_admin"' in back.text

    done = client.post(
        "/admin/connect/telegram", data=_form(institution, "connect", csrf, **fields)
    )
    assert done.status_code == 200, done.text
    assert "Страница подключена" in done.text
    assert done.headers["cache-control"] == "no-store"  # the secret is on it
    page = session.exec(select(Page).where(Page.external_id == str(CHANNEL))).one()
    secret = cipher().decrypt(page.secret_enc)
    assert secret and secret in done.text  # shown this once
    assert cipher().decrypt(page.access_token_enc) == TOKEN
    assert page.name == "Администрация Заречного округа"
    assert page.institution_id == institution.id
    url = f"https://otklik.example.ru/webhooks/telegram/{page.key}"
    assert bot.payload("setWebhook") == {
        "url": url,
        "secret_token": secret,
        "allowed_updates": ["message", "edited_message", "channel_post", "edited_channel_post"],
    }
    assert [m for m, _ in bot.calls] == [
        "getChat",
        "getMe",
        "setWebhook",
        "getWebhookInfo",
        "getChatMember",
    ]
    assert "Бот — администратор группы обсуждения" in done.text
    entry = session.exec(select(AuditEvent).where(AuditEvent.action == "page.connect")).one()
    assert entry.actor_id == admin.id
    assert entry.object_id == str(page.id)
    assert entry.after and entry.after["secret"] != secret and TOKEN not in json.dumps(entry.after)
    # The page card later says only «задан»: the secret is not on it.
    card = client.get(f"/admin/pages/{page.id}/health", headers={"HX-Request": "true"})
    assert secret not in card.text


def test_reconnecting_keeps_the_address(
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    http_handler.append(FakeBotApi())
    csrf = sign_in(client, admin)
    fields = {"token": TOKEN, "target": str(CHANNEL), "name": "Канал"}
    client.post("/admin/connect/telegram", data=_form(institution, "connect", csrf, **fields))
    page = session.exec(select(Page).where(Page.external_id == str(CHANNEL))).one()
    key, secret = page.key, cipher().decrypt(page.secret_enc)
    again = client.post(
        "/admin/connect/telegram", data=_form(institution, "connect", csrf, **fields)
    )
    assert "Страница подключена заново" in again.text
    session.expire_all()
    pages = session.exec(select(Page).where(Page.external_id == str(CHANNEL))).all()
    assert [(p.key, cipher().decrypt(p.secret_enc)) for p in pages] == [(key, secret)]


def test_a_refusal_keeps_what_was_typed(
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    http_handler.append(FakeBotApi(fail=401))
    csrf = sign_in(client, admin)
    fields = {"token": TOKEN, "target": "@zarechny_admin", "name": "Мой канал"}
    answer = client.post(
        "/admin/connect/telegram", data=_form(institution, "connect", csrf, **fields)
    )
    assert answer.status_code == 422
    assert "<title>Ошибка: " in answer.text
    assert "@BotFather" in answer.text
    assert 'value="Мой канал"' in answer.text
    assert session.exec(select(Page).where(Page.platform == Platform.telegram)).first() is None


def test_form_errors_say_how_to_fix(
    client: TestClient, session: Session, admin: User, institution: Institution
) -> None:
    csrf = sign_in(client, admin)
    answer = client.post(
        "/admin/connect/vk",
        data={
            "csrf_token": csrf,
            "step": "check",
            "institution_id": "",
            "target": "club1",
            "token": "",
        },
    )
    assert answer.status_code == 422
    text = html.unescape(answer.text)
    assert "Выберите учреждение" in text
    assert "Укажите номер сообщества цифрами" in text
    assert "Вставьте ключ доступа сообщества" in text
    assert client.get("/admin/connect/myspace").status_code == 404


class FakeVk:
    def __init__(self, *, manage: bool) -> None:
        self.manage = manage
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[1]
        form = dict(parse_qsl(request.content.decode()))
        self.calls.append((method, form))
        rights = [{"setting": 262144, "name": "manage"}] if self.manage else []
        answers: dict[str, Any] = {
            "groups.getTokenPermissions": {"mask": 0, "permissions": rights},
            "groups.getById": {"groups": [{"id": 218734591, "name": "Школа № 3"}]},
            "groups.getCallbackConfirmationCode": {"code": "c0nf1rm"},
            "groups.getCallbackServers": {"count": 0, "items": []},
            "groups.addCallbackServer": {"server_id": 5},
            "groups.setCallbackSettings": 1,
        }
        if method == "groups.getCallbackServers" and any(
            m == "groups.addCallbackServer" for m, _ in self.calls
        ):
            added = next(f for m, f in self.calls if m == "groups.addCallbackServer")
            answers[method] = {
                "count": 1,
                "items": [{"id": 5, "url": added["url"], "status": "ok", "title": "Otklik"}],
            }
        return httpx.Response(200, json={"response": answers[method]})


def test_vk_with_a_managing_token_registers_the_server(
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    vk = FakeVk(manage=True)
    http_handler.append(vk)
    csrf = sign_in(client, admin)
    fields = {"token": "vk1.a.token", "target": "218734591", "name": ""}
    done = client.post("/admin/connect/vk", data=_form(institution, "connect", csrf, **fields))
    assert done.status_code == 200, done.text
    page = session.exec(select(Page).where(Page.external_id == "218734591")).one()
    assert page.confirmation_code == "c0nf1rm"
    assert page.name == "Школа № 3"
    added = next(f for m, f in vk.calls if m == "groups.addCallbackServer")
    assert added["url"] == f"https://otklik.example.ru/webhooks/vk/{page.key}"
    assert added["secret_key"] == cipher().decrypt(page.secret_enc)
    settings = next(f for m, f in vk.calls if m == "groups.setCallbackSettings")
    assert settings["api_version"] == "5.199" and settings["wall_reply_new"] == "1"
    assert "Добавьте сервер во ВКонтакте" not in done.text
    actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["page.connect", "page.webhook_register"]


def test_vk_without_manage_rights_shows_what_to_paste(
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    vk = FakeVk(manage=False)
    http_handler.append(vk)
    csrf = sign_in(client, admin)
    fields = {"token": "vk1.a.token", "target": "-218734591", "name": "Школа"}
    done = client.post("/admin/connect/vk", data=_form(institution, "connect", csrf, **fields))
    assert "Добавьте сервер во ВКонтакте" in done.text
    assert "c0nf1rm" in done.text
    assert not any(m == "groups.addCallbackServer" for m, _ in vk.calls)
    page = session.exec(select(Page).where(Page.external_id == "218734591")).one()
    assert cipher().decrypt(page.secret_enc) in done.text


def test_generic_source_gets_a_signed_example(
    client: TestClient, session: Session, admin: User, institution: Institution
) -> None:
    csrf = sign_in(client, admin)
    fields = {"target": "portal-zhkh", "name": "Портал ЖКХ"}
    done = client.post("/admin/connect/generic", data=_form(institution, "connect", csrf, **fields))
    assert done.status_code == 200
    page = session.exec(select(Page).where(Page.external_id == "portal-zhkh")).one()
    secret = cipher().decrypt(page.secret_enc)
    assert secret
    text = html.unescape(done.text)
    signature = re.search(r"X-Otklik-Signature: sha256=([0-9a-f]{64})", text)
    body = re.search(r"--data-binary '([^']+)'", text)
    assert signature and body
    expected = hmac.new(secret.encode(), body.group(1).encode(), hashlib.sha256).hexdigest()
    assert signature.group(1) == expected


@pytest.mark.parametrize("platform", ["max", "ok"])
def test_max_and_ok_subscribe_the_pages_address(
    platform: str,
    client: TestClient,
    session: Session,
    admin: User,
    institution: Institution,
    http_handler: list[Handler],
) -> None:
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, json={"success": True})
        if request.url.path == "/me":
            return httpx.Response(200, json={"user_id": 555, "name": "Бот школы"})
        subscribe = json.loads(seen[-2].content)
        return httpx.Response(200, json={"subscriptions": [{"url": subscribe["url"]}]})

    http_handler.append(api)
    csrf = sign_in(client, admin)
    fields = {
        "token": "platform-token",
        "target": "5700" if platform == "ok" else "",
        "name": "Группа",
    }
    done = client.post(
        f"/admin/connect/{platform}", data=_form(institution, "connect", csrf, **fields)
    )
    assert done.status_code == 200, done.text
    page = session.exec(select(Page).where(Page.platform == platform)).one()
    posted = json.loads(next(r for r in seen if r.method == "POST").content)
    assert posted["url"] == f"https://otklik.example.ru/webhooks/{platform}/{page.key}"
    if platform == "max":
        assert posted["secret"] == cipher().decrypt(page.secret_enc)
        assert page.external_id == "555"
    else:
        assert page.secret_enc is None and page.external_id == "5700"


@pytest.mark.parametrize("role", [Role.operator, Role.supervisor])
def test_other_roles_get_404(
    client: TestClient, session: Session, role: Role, institution: Institution
) -> None:
    scope: dict[str, Any] = (
        {"institution_ids": [institution.id]}
        if role == Role.operator
        else {"territory_id": institution.territory_id}
    )
    user = make_user(session, role, **scope)
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post(
        "/login", data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    page = make_page(session, institution_id=institution.id, platform=Platform.telegram)
    for path in (
        "/admin/connect",
        "/admin/connect/telegram",
        f"/admin/pages/{page.id}/health",
        "/admin/failed",
        "/admin/failed/1",
        "/admin/subscriptions",
        "/admin/subscriptions/1",
    ):
        assert client.get(path).status_code == 404, path
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/inbox").text)
    assert csrf
    for path in (
        "/admin/connect/telegram",
        f"/admin/pages/{page.id}/test-event",
        "/admin/failed/replay",
        "/admin/subscriptions",
    ):
        assert client.post(path, data={"csrf_token": csrf.group(1)}).status_code == 404, path
