"""Failed deliveries and a page's connection health in the browser, on committed data
(a replay and a test event are processed in transactions of their own)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.models import AuditEvent, Role, User
from app.core.config import Settings
from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.main import create_app
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_page

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def web(settings: Settings, live_engine: sa.Engine, clock: FrozenClock) -> Iterator[TestClient]:
    """The app with no processor of its own and a fake Bot API."""

    def bot_api(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[1]
        results = {
            "getWebhookInfo": {
                "url": "https://elsewhere.example/hook",
                "pending_update_count": 37,
                "last_error_date": 1773126000,
                "last_error_message": "Connection timed out",
            },
            "getMe": {"id": 7001, "is_bot": True},
            "getChat": {"id": -100, "type": "channel", "title": "К"},
        }
        return httpx.Response(200, json={"ok": True, "result": results[method]})

    app = create_app(
        settings,
        engine=live_engine,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(bot_api)),
        run_worker=False,
        process_events=False,
    )
    with TestClient(app, base_url="https://otklik.example.ru") as client:
        yield client


def sign_in(client: TestClient, user: User) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post(
        "/login", data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/admin/failed").text)
    assert found
    return found.group(1)


def _failed(
    session: Session, page: Page, key: str, body: dict[str, object], clock: FrozenClock
) -> int:
    assert page.id is not None
    event = InboundEvent(
        platform=page.platform,
        page_id=page.id,
        delivery_key=key,
        body=json.dumps(body, ensure_ascii=False).encode(),
        received_at=clock() - timedelta(hours=1),
        status=EventStatus.failed,
        attempts=3,
        last_error="RuntimeError: database went away",
    )
    session.add(event)
    session.commit()
    assert event.id is not None
    return event.id


@pytest.fixture
def admin(db: Session) -> User:
    user = make_user(db, Role.admin)
    db.commit()
    return user


def test_failed_list_shows_the_escaped_body_and_replays(
    web: TestClient, db: Session, admin: User, clock: FrozenClock
) -> None:
    generic = make_page(db, platform=Platform.generic)
    vk = make_page(db, platform=Platform.vk)
    message = {
        "id": "m-1",
        "thread_id": "t-1",
        "kind": "message",
        "author": {"id": "c-1", "name": "Иван"},
        "text": f"{SCRIPT} Когда починят свет?",
        "sent_at": "2026-03-10T09:00:00+03:00",
    }
    first = _failed(db, generic, "m-1", message, clock)
    _failed(
        db, vk, "vk-1", {"type": "wall_reply_new", "secret": "Zr7qL2vN9xKw", "object": {}}, clock
    )
    csrf = sign_in(web, admin)

    listing = web.get("/admin/failed")
    assert listing.status_code == 200
    assert "2\u00a0события с ошибкой" in listing.text
    assert "RuntimeError: database went away" in listing.text
    assert SCRIPT not in listing.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert "Zr7qL2vN9xKw" not in listing.text and "••••••" in listing.text
    detail = web.get(f"/admin/failed/{first}")
    assert detail.status_code == 200 and "Когда починят свет?" in detail.text
    assert web.get("/admin/failed/987654321").status_code == 404

    replayed = web.post(
        f"/admin/failed/{first}/replay", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert replayed.status_code == 303
    assert web.get(replayed.headers["location"]).text.count("обработано") >= 1
    db.expire_all()
    assert db.get(InboundEvent, first).status == EventStatus.processed  # type: ignore[union-attr]
    entry = db.exec(select(AuditEvent).where(AuditEvent.action == "delivery.replay")).one()
    assert entry.object_id == str(first) and entry.actor_id == admin.id
    assert entry.before == {"status": "failed"} and entry.after == {"status": "processed"}

    everything = web.post("/admin/failed/replay", data={"csrf_token": csrf})
    assert "Повторено событий: 1" in everything.text  # the VK one, which fails again
    assert "1\u00a0событие с ошибкой" in everything.text


def test_health_counts_deliveries_and_a_test_event_arrives(
    web: TestClient, db: Session, admin: User, clock: FrozenClock
) -> None:
    page = make_page(db, platform=Platform.generic)
    _failed(db, page, "old", {"id": "old"}, clock)
    csrf = sign_in(web, admin)
    health = web.get(f"/admin/pages/{page.id}/health", headers={"HX-Request": "true"})
    assert health.status_code == 200
    assert "<html" not in health.text  # a fragment
    assert "1\u00a0событие" in health.text and "1\u00a0с ошибкой" in health.text
    assert "Публикуются" not in health.text  # a generic source takes no replies

    sent = web.post(
        f"/admin/pages/{page.id}/test-event",
        data={"csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    stored = db.exec(
        select(InboundEvent).where(
            InboundEvent.page_id == page.id, InboundEvent.delivery_key != "old"
        )
    ).one()
    assert stored.status == EventStatus.ignored
    assert f"Тестовое событие №{stored.id} получено" in sent.text
    assert "проверка подлинности пройдена" in sent.text
    assert "2\u00a0события" in sent.text
    assert db.exec(select(AuditEvent).where(AuditEvent.action == "page.test_event")).one()
    # Without JavaScript: back to the health page, which names the test event.
    plain = web.post(f"/admin/pages/{page.id}/test-event", data={"csrf_token": csrf})
    assert plain.status_code == 200 and "Состояние подключения" in plain.text
    assert "Тестовое событие №" in plain.text


def test_health_shows_telegrams_own_view(
    web: TestClient, db: Session, admin: User, clock: FrozenClock
) -> None:
    page = make_page(db, platform=Platform.telegram, access_token="7001:token")
    db.commit()
    sign_in(web, admin)
    health = web.get(f"/admin/pages/{page.id}/health")
    assert health.status_code == 200
    assert "Не настроена" in health.text and "elsewhere.example" in health.text
    assert "Connection timed out" in health.text
    assert "37" in health.text  # pending updates
    assert "Публикуются" in health.text  # a bot token: replies can be published


def test_the_api_replay_is_audited(web: TestClient, db: Session, clock: FrozenClock) -> None:
    from tests.factories.auth import auth_headers

    admin = make_user(db, Role.admin)
    headers = auth_headers(db, admin)
    page = make_page(db, platform=Platform.generic)
    event_id = _failed(db, page, "bad", {"id": "bad", "kind": "nonsense"}, clock)
    answer = web.post(f"/api/v1/events/{event_id}/replay", headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "failed"
    everything = web.post("/api/v1/events/replay-failed", headers=headers)
    assert everything.json() == {"replayed": 1, "processed": 0, "failed": 1}
    entries = db.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "delivery.replay")
        .order_by(col(AuditEvent.id))  # no order is the table's order on PostgreSQL
    ).all()
    assert [(e.object_id, e.actor_id) for e in entries] == [(str(event_id), admin.id)] * 2
    assert [(e.before, e.after) for e in entries] == [
        ({"attempts": 3}, {"attempts": 4}),
        ({"attempts": 4}, {"attempts": 5}),
    ]
