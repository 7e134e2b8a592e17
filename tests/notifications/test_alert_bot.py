"""Linking a user to the Telegram alert bot: a one-time code on the profile, `/start
<code>` read from getUpdates by the `alert_bot` job, against a fake Bot API."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from app.auth.models import AlertBot, Role, TelegramLink, User
from app.core.config import Settings
from app.core.crypto import Cipher
from app.jobs.context import JobContext
from app.notifications import alert_bot
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import PASSWORD, make_user

TOKEN = "7001:alert-bot-token"
HTMX = {"HX-Request": "true"}


@dataclass
class FakeBotApi:
    """The Bot API of one bot: updates waiting to be fetched, and every call made."""

    username: str = "otklik_alerts_bot"
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: tuple[int, str] | None = None

    def start(self, chat_id: int, text: str, chat_type: str = "private") -> None:
        update_id = 900 + len(self.updates)
        self.updates.append(
            {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "from": {"id": chat_id, "is_bot": False, "first_name": "Анна"},
                    "chat": {"id": chat_id, "type": chat_type, "first_name": "Анна"},
                    "date": 1773126000,
                    "text": text,
                },
            }
        )

    def sent(self) -> list[dict[str, Any]]:
        return [payload for method, payload in self.calls if method == "sendMessage"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith(f"/bot{TOKEN}/"), request.url
        method = request.url.path.rsplit("/", 1)[1]
        payload = json.loads(request.content or b"{}")
        self.calls.append((method, payload))
        if self.fail is not None:
            code, description = self.fail
            return httpx.Response(
                code, json={"ok": False, "error_code": code, "description": description}
            )
        if method == "getMe":
            return httpx.Response(
                200,
                json={
                    "ok": True,
                    "result": {"id": 7001, "is_bot": True, "username": self.username},
                },
            )
        if method == "getUpdates":
            offset = payload.get("offset", 0)
            fresh = [u for u in self.updates if u["update_id"] >= offset]
            return httpx.Response(200, json={"ok": True, "result": fresh})
        if method == "sendMessage":
            return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})
        return httpx.Response(
            404, json={"ok": False, "error_code": 404, "description": "Not Found"}
        )


@pytest.fixture
def bot() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
def alert_settings(settings: Settings) -> Settings:
    # The app reads the same settings object: the bot is configured for its pages too.
    settings.telegram_alert_bot_token = SecretStr(TOKEN)
    return settings


@pytest.fixture
def poll(
    connection: sa.Connection, alert_settings: Settings, clock: FrozenClock, bot: FakeBotApi
) -> Callable[[], int]:
    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    ctx = JobContext(
        engine=connection.engine,
        settings=alert_settings,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(bot)),
        cipher=Cipher(SECRET),
        session_factory=sessions,
    )
    return lambda: alert_bot.poll_alert_bot(ctx)


def _sign_in(client: TestClient, user: User) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/profile").text)
    assert found
    return found.group(1)


def test_linking_from_the_profile_to_the_first_alert(
    client: TestClient,
    session: Session,
    alert_settings: Settings,
    bot: FakeBotApi,
    poll: Callable[[], int],
) -> None:
    user = make_user(session, Role.admin, login="teacher", name="Анна Петровна")
    token = _sign_in(client, user)
    page = client.get("/profile")
    assert "Подключить Telegram" in page.text
    assert "администратор Отклика ещё не подключил" not in page.text

    # The bot has not been asked its username yet: the code alone, to send by hand.
    answer = client.post("/profile/telegram", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    link = session.exec(select(TelegramLink).where(TelegramLink.user_id == user.id)).one()
    assert re.fullmatch(r"[a-z0-9]{10}", link.code)
    page = client.get("/profile")
    assert f"<code>/start {link.code}</code>" in page.text
    assert 'hx-trigger="every 5s' in page.text  # the section waits for the bot

    assert poll() == 0  # getMe, then nothing new
    page = client.get("/profile/telegram", headers=HTMX)
    assert f'href="https://t.me/otklik_alerts_bot?start={link.code}"' in page.text

    bot.start(5550001, f"/start {link.code}")
    assert poll() == 1
    session.refresh(user)
    assert user.telegram_chat_id == "5550001"
    assert session.exec(select(TelegramLink).where(TelegramLink.id == link.id)).first() is None
    (reply,) = bot.sent()
    assert reply["chat_id"] == 5550001
    assert reply["text"].startswith("Готово, Анна Петровна: уведомления Отклика")

    page = client.get("/profile/telegram", headers=HTMX)
    assert "Подключено" in page.text and "every 5s" not in page.text
    # The offset moved on: the same update is not applied (nor answered) again.
    assert poll() == 0
    get_updates = [p for m, p in bot.calls if m == "getUpdates"]
    assert get_updates[-1]["offset"] == 901
    assert len(bot.sent()) == 1

    client.post("/profile/telegram/unlink", data={"csrf_token": token})
    session.refresh(user)
    assert user.telegram_chat_id is None


def test_a_wrong_old_or_used_code_links_nothing_and_says_why(
    session: Session, clock: FrozenClock, bot: FakeBotApi, poll: Callable[[], int]
) -> None:
    user = make_user(session, Role.admin)
    link = alert_bot.start_linking(session, user, clock())
    bot.start(5550002, "/start zzzzzzzzzz")
    bot.start(5550003, "/start")
    assert poll() == 2
    session.refresh(user)
    assert user.telegram_chat_id is None
    answers = {p["chat_id"]: p["text"] for p in bot.sent()}
    assert answers[5550002].startswith("Код не подошёл")
    assert answers[5550003].startswith("Это бот уведомлений Отклика")

    clock.advance(minutes=31)
    bot.start(5550004, f"/start {link.code}")
    poll()
    session.refresh(user)
    assert user.telegram_chat_id is None
    assert bot.sent()[-1]["text"].startswith("Код не подошёл")


def test_a_code_in_a_group_chat_is_ignored(
    session: Session, clock: FrozenClock, bot: FakeBotApi, poll: Callable[[], int]
) -> None:
    user = make_user(session, Role.admin)
    link = alert_bot.start_linking(session, user, clock())
    bot.start(-100777, f"/start {link.code}", chat_type="supergroup")
    assert poll() == 1
    session.refresh(user)
    assert user.telegram_chat_id is None
    assert bot.sent() == []


def test_one_chat_one_user_and_stop_unlinks(
    session: Session, clock: FrozenClock, bot: FakeBotApi, poll: Callable[[], int]
) -> None:
    first = make_user(session, Role.admin)
    second = make_user(session, Role.admin)
    first.telegram_chat_id = "5550005"
    session.add(first)
    link = alert_bot.start_linking(session, second, clock())
    bot.start(5550005, f"/start {link.code}")
    poll()
    session.refresh(first)
    session.refresh(second)
    assert (first.telegram_chat_id, second.telegram_chat_id) == (None, "5550005")
    bot.start(5550005, "/stop")
    poll()
    session.refresh(second)
    assert second.telegram_chat_id is None
    assert bot.sent()[-1]["text"].startswith("Уведомления Отклика в этот чат отключены")


def test_a_new_code_replaces_the_old_one(session: Session, clock: FrozenClock) -> None:
    user = make_user(session, Role.admin)
    old = alert_bot.start_linking(session, user, clock()).code
    new = alert_bot.start_linking(session, user, clock()).code
    assert old != new
    codes = session.exec(select(TelegramLink).where(TelegramLink.user_id == user.id)).all()
    assert [c.code for c in codes] == [new]


def test_only_one_worker_polls_at_a_time(
    session: Session, clock: FrozenClock, bot: FakeBotApi, poll: Callable[[], int]
) -> None:
    session.add(AlertBot(bot_id="7001", lease_until=clock() + timedelta(seconds=30)))
    session.flush()
    bot.start(5550006, "/start")
    assert poll() == 0
    assert bot.calls == []
    clock.advance(seconds=31)  # a lease left by a worker that died runs out
    assert poll() == 1


def test_a_bot_with_a_webhook_cannot_be_polled_and_the_profile_says_so(
    client: TestClient, session: Session, bot: FakeBotApi, poll: Callable[[], int]
) -> None:
    bot.fail = (409, "Conflict: can't use getUpdates method while webhook is active")
    bot.username = "x"
    session.add(AlertBot(bot_id="7001", username="otklik_alerts_bot"))
    session.flush()
    assert poll() == 0
    state = session.get(AlertBot, "7001")
    assert state is not None
    session.refresh(state)
    assert state.lease_until is None
    assert state.error and "настроен вебхук" in state.error
    user = make_user(session, Role.admin)
    _sign_in(client, user)
    assert "Бот уведомлений сейчас не отвечает Отклику" in client.get("/profile").text
    # Once Telegram answers again, the error is gone.
    bot.fail = None
    poll()
    session.refresh(state)
    assert state.error is None


def test_without_a_token_the_job_does_nothing(
    connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    calls: list[httpx.Request] = []
    ctx = JobContext(
        engine=connection.engine,
        settings=settings,
        clock=clock,
        http=httpx.Client(
            transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500))
        ),
        cipher=Cipher(SECRET),
    )
    assert alert_bot.poll_alert_bot(ctx) == 0
    assert calls == []
