"""Secrets never reach the logs: a whole run at DEBUG, searched for every one of them.

Webhooks on every platform (with their secrets, and impostors without), processing,
replies published to fake platform APIs that take the pages' tokens (in URL paths,
queries and bodies), citizens' names asked of VK, the alert bot polling Telegram,
sign-in with a password, the JSON API with a bearer token, failed deliveries listed:
all of it with the application's own log set-up at DEBUG, then every token, secret and
password used is looked for in what was written.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.core.config import Settings
from app.core.logs import setup_logging
from app.directory.models import Page, Platform
from app.jobs.context import JobContext
from app.main import create_app
from app.notifications import alert_bot
from app.outbox import sender
from app.questions import citizens
from app.questions.models import OutboxItem, OutboxStatus, Question
from tests.browser.platforms import FakePlatforms
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import PASSWORD, make_token, make_user
from tests.factories.directory import make_page
from tests.live import settle
from webhooks.generic import sign

Payload = Callable[[str, str], bytes]

VK_SECRET = "vkSecretZr7qL2vN9xKw"
VK_TOKEN = "vk1.a.VkCommunityToken_q8Wm3"
VK_CONFIRMATION = "cnf7Q2k9"
TG_SECRET = "tgWebhookSecret_5f8D"
TG_TOKEN = "7012345678:AAHtgBotTokenXyZ_q1w2e3r4"
OK_TOKEN = "tkn1OkAccessToken9aVf0"
MAX_SECRET = "maxWebhookSecret_Q7"
MAX_TOKEN = "maxBotToken_z9Y8x7W6"
GENERIC_KEY = "genericHmacKey_P4ss"
ALERT_TOKEN = "7099988877:AAHalertBotToken_Zz9"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The application's log set-up (`setup_logging`) at DEBUG, written to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("DEBUG")
    out = io.StringIO()
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    yield out
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.fixture
def fake() -> Iterator[FakePlatforms]:
    platforms = FakePlatforms()
    platforms.start()
    yield platforms
    platforms.stop()


def _pages(db: Session) -> dict[str, Page]:
    pages = {
        "vk": make_page(
            db,
            platform=Platform.vk,
            external_id="218734591",
            secret=VK_SECRET,
            confirmation_code=VK_CONFIRMATION,
            access_token=VK_TOKEN,
        ),
        "telegram": make_page(
            db,
            platform=Platform.telegram,
            external_id="-1001987654321",
            secret=TG_SECRET,
            access_token=TG_TOKEN,
        ),
        "ok": make_page(
            db, platform=Platform.ok, external_id="70000001234567", access_token=OK_TOKEN
        ),
        "max": make_page(
            db,
            platform=Platform.max,
            external_id="-70011223344",
            secret=MAX_SECRET,
            access_token=MAX_TOKEN,
        ),
        "generic": make_page(db, platform=Platform.generic, external_id="site", secret=GENERIC_KEY),
    }
    db.commit()
    return pages


def _vk(payload: Payload, name: str) -> bytes:
    return payload("vk", name).replace(b"Zr7qL2vN9xKw", VK_SECRET.encode())


def test_a_whole_run_at_debug_logs_no_secret(
    logs: io.StringIO,
    fake: FakePlatforms,
    live_engine: sa.Engine,
    settings: Settings,
    clock: FrozenClock,
    db: Session,
    payload: Payload,
) -> None:
    settings = settings.model_copy(
        update={
            "log_level": "DEBUG",
            "vk_api_url": fake.url("vk"),
            "telegram_api_url": fake.url("telegram"),
            "ok_api_url": fake.url("ok"),
            "max_api_url": fake.url("max"),
            "telegram_alert_bot_token": SecretStr(ALERT_TOKEN),
        }
    )
    http = httpx.Client(timeout=10)
    app = create_app(settings, engine=live_engine, clock=clock, http=http, run_worker=False)
    with TestClient(app, base_url="https://otklik.example.ru") as client:
        cipher = app.state.cipher
        pages = _pages(db)
        admin = make_user(db, Role.admin)
        bearer = make_token(db, admin)
        db.commit()

        def post(platform: str, body: bytes, headers: dict[str, str] | None = None) -> int:
            page = pages[platform]
            url = f"/webhooks/{platform}/{page.key}"
            return client.post(url, content=body, headers=headers or {}).status_code

        # Webhooks: the real ones, and impostors with wrong secrets.
        assert post("vk", _vk(payload, "confirmation")) == 200
        assert post("vk", _vk(payload, "wall_reply_new")) == 200
        assert post("vk", payload("vk", "wall_reply_edit").replace(b"Zr7", b"Bad")) == 403
        tg = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        for name in ("automatic_forward", "comment"):
            assert post("telegram", payload("telegram", name), tg) == 200
        bad_tg = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET + "x"}
        assert post("telegram", payload("telegram", "private_text"), bad_tg) == 403
        assert post("ok", payload("ok", "message")) == 200
        mx = {"X-Max-Bot-Api-Secret": MAX_SECRET}
        assert post("max", payload("max", "message_created_dialog"), mx) == 200
        generic = payload("generic", "message")
        assert post("generic", generic, {"X-Otklik-Signature": sign(GENERIC_KEY, generic)}) == 200
        assert post("generic", generic, {"X-Otklik-Signature": sign("wrong", generic)}) == 403
        settle(app)

        # Sign-in with the password; the JSON API with the bearer token.
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        signed_in = client.post(
            "/login",
            data={"login": admin.login, "password": PASSWORD, "csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        bad = client.post(
            "/login",
            data={"login": admin.login, "password": PASSWORD + "!", "csrf_token": csrf.group(1)},
        )
        assert bad.status_code in (200, 401, 403, 422, 429)
        api = {"Authorization": f"Bearer {bearer}"}
        db.commit()
        questions = db.exec(select(Question).order_by(col(Question.id))).all()
        assert {q.platform for q in questions} >= {"vk", "telegram", "ok", "max", "generic"}
        for question in questions:
            client.post(
                f"/api/v1/questions/{question.id}/reply",
                json={"text": "Здравствуйте! Ответ готов.", "interim": False},
                headers=api,
            )
        assert client.get("/api/v1/events/failed", headers=api).status_code == 200
        session_cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

        # Background work: publishing, names from VK, the alert bot.
        ctx = JobContext(
            engine=live_engine, settings=settings, clock=clock, http=http, cipher=cipher
        )
        sender.send_outbox(ctx)
        citizens.resolve_citizen_names(ctx)
        alert_bot.poll_alert_bot(ctx)
    http.close()

    db.commit()
    published = db.exec(
        select(OutboxItem.status).where(col(OutboxItem.status) == OutboxStatus.sent)
    ).all()
    assert len(published) >= 4, "replies were published on every platform that takes them"
    used = {"vk", "telegram", "ok", "max"}
    assert used <= {c.platform for c in fake.calls}
    assert "users.get" in fake.methods("vk")  # names asked with the community token
    assert "getUpdates" in fake.methods("telegram")  # the alert bot polled with its token
    text = logs.getvalue()
    # The run was logged: requests, refused impostors, published replies.
    for expected in ('"path": "/login"', "unauthentic delivery", "reply published"):
        assert expected in text, expected
    secrets = {
        "VK secret": VK_SECRET,
        "VK token": VK_TOKEN,
        "VK confirmation": VK_CONFIRMATION,
        "Telegram webhook secret": TG_SECRET,
        "Telegram bot token": TG_TOKEN,
        "Telegram bot token secret part": TG_TOKEN.split(":")[1],
        "OK token": OK_TOKEN,
        "MAX secret": MAX_SECRET,
        "MAX token": MAX_TOKEN,
        "generic HMAC key": GENERIC_KEY,
        "alert bot token": ALERT_TOKEN.split(":")[1],
        "application key": SECRET,
        "password": PASSWORD,
        "API token": bearer,
        "session cookie": session_cookie.split("=", 1)[-1] if session_cookie else "-",
    }
    leaked = [what for what, value in secrets.items() if value and value in text]
    lines = [line for line in text.splitlines() if any(v in line for v in secrets.values())]
    assert not leaked, json.dumps(lines[:5], ensure_ascii=False)
