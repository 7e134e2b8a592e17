"""Outgoing webhook subscriptions in the browser: create (secret shown once), edit,
pause, send a test that the outbox delivers signed, delete; every change audited;
bad input explained and kept."""

from __future__ import annotations

import html
import json
import re

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import AuditEvent, Role, User
from app.core.config import Settings
from app.questions.models import OutboxItem, OutboxStatus, WebhookSubscription
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user
from tests.outbox.outbox_helpers import CIPHER, FakePlatform, run
from webhooks.generic import sign

URL = "https://sed.example.ru/otklik/events"


def sign_in(client: TestClient, user: User) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post(
        "/login", data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/admin/subscriptions").text)
    assert found
    return found.group(1)


def test_subscription_lifecycle(
    client: TestClient,
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    admin = make_user(session, Role.admin)
    csrf = sign_in(client, admin)
    empty = client.get("/admin/subscriptions")
    assert empty.status_code == 200 and "Подписок нет" in empty.text

    created = client.post(
        "/admin/subscriptions",
        data={"csrf_token": csrf, "url": URL, "events": ["question.created", "sla.breached"]},
    )
    assert created.status_code == 200
    subscription = session.exec(select(WebhookSubscription)).one()
    secret = CIPHER.decrypt(subscription.secret_enc)
    assert secret and f'id="subscription-secret">{secret}<' in created.text
    assert created.headers["cache-control"] == "no-store"
    assert subscription.events == ["question.created", "sla.breached"]
    assert secret not in client.get("/admin/subscriptions").text  # shown once

    sent = client.post(
        f"/admin/subscriptions/{subscription.id}/test",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    fake = FakePlatform([httpx.Response(204)])
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    assert call.path == "/otklik/events"
    assert call.headers["x-otklik-event"] == "test"
    item = session.exec(
        select(OutboxItem).where(OutboxItem.subscription_id == subscription.id)
    ).one()
    session.refresh(item)
    raw = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert call.headers["x-otklik-signature"] == sign(secret, raw)
    assert item.status == OutboxStatus.sent
    page = client.get(f"/admin/subscriptions/{subscription.id}")
    assert "Проверка" in page.text and "доставлено" in page.text

    paused = client.post(
        f"/admin/subscriptions/{subscription.id}",
        data={"csrf_token": csrf, "url": URL, "events": ["sla.breached"], "is_active": ""},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    session.refresh(subscription)
    assert subscription.events == ["sla.breached"] and not subscription.is_active

    gone = client.post(
        f"/admin/subscriptions/{subscription.id}/delete",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert session.exec(select(WebhookSubscription)).first() is None
    actions = session.exec(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "subscription")
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "subscription.create",
        "subscription.test",
        "subscription.update",
        "subscription.delete",
    ]
    update = session.exec(
        select(AuditEvent).where(AuditEvent.action == "subscription.update")
    ).one()
    assert update.before == {"events": ["question.created", "sla.breached"], "is_active": True}
    assert update.after == {"events": ["sla.breached"], "is_active": False}


def test_bad_input_is_explained_and_kept(client: TestClient, session: Session) -> None:
    csrf = sign_in(client, make_user(session, Role.admin))
    no_events = client.post("/admin/subscriptions", data={"csrf_token": csrf, "url": URL})
    assert no_events.status_code == 422
    assert "Отметьте хотя бы одно событие" in no_events.text
    assert f'value="{URL}"' in no_events.text
    private = client.post(
        "/admin/subscriptions",
        data={"csrf_token": csrf, "url": "http://127.0.0.1:8000/x", "events": ["sla.breached"]},
    )
    assert private.status_code == 422
    assert "внутреннюю сеть" in html.unescape(private.text)
    bad = client.post(
        "/admin/subscriptions",
        data={"csrf_token": csrf, "url": "ftp://x", "events": ["sla.breached"]},
    )
    assert bad.status_code == 422 and "https://" in bad.text
    assert session.exec(select(WebhookSubscription)).first() is None
    assert client.get("/admin/subscriptions/987654321").status_code == 404


def test_the_api_audits_changes_and_sends_a_test(client: TestClient, session: Session) -> None:
    from tests.factories.auth import auth_headers

    admin = make_user(session, Role.admin)
    headers = auth_headers(session, admin)
    created = client.post(
        "/api/v1/webhook-subscriptions",
        json={"url": URL, "events": ["sla.breached"]},
        headers=headers,
    )
    assert created.status_code == 201
    subscription_id = created.json()["id"]
    queued = client.post(f"/api/v1/webhook-subscriptions/{subscription_id}/test", headers=headers)
    assert queued.status_code == 202
    item = session.get(OutboxItem, queued.json()["delivery_id"])
    assert item is not None and item.payload["event"] == "test"
    assert item.subscription_id == subscription_id and item.status == OutboxStatus.pending
    client.patch(
        f"/api/v1/webhook-subscriptions/{subscription_id}",
        json={"is_active": False},
        headers=headers,
    )
    assert (
        client.delete(
            f"/api/v1/webhook-subscriptions/{subscription_id}", headers=headers
        ).status_code
        == 204
    )
    entries = session.exec(
        select(AuditEvent).where(AuditEvent.object_type == "subscription").order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in entries] == [
        "subscription.create",
        "subscription.test",
        "subscription.update",
        "subscription.delete",
    ]
    assert entries[2].before == {"is_active": True} and entries[2].after == {"is_active": False}
    assert all(e.actor_id == admin.id and e.address for e in entries)
    missing = client.post("/api/v1/webhook-subscriptions/987654321/test", headers=headers)
    assert missing.status_code == 404
