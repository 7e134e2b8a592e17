"""Outgoing webhooks: signed, retried, cancelled with their subscription; the backoff."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.outbox.outcomes import backoff
from app.questions import outgoing
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import CIPHER, FakePlatform, run, vk_wall
from webhooks.generic import sign


def test_outgoing_webhooks_are_signed_and_retried(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    subscription = WebhookSubscription(
        url="https://sed.example.ru/hook",
        secret_enc=CIPHER.encrypt("s3cret-for-signing-0123"),
        events=["question.answered"],
    )
    session.add(subscription)
    question = vk_wall(session, clock)
    assert outgoing.emit(session, "question.answered", question, clock()) == 1
    session.commit()
    fake = FakePlatform([httpx.Response(503, headers={"Retry-After": "30"}), httpx.Response(204)])
    run(connection, settings, clock, fake)
    (item,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.webhook)).all()
    session.refresh(item)
    assert item.status == OutboxStatus.pending
    assert item.next_attempt_at == clock() + timedelta(seconds=30)
    clock.advance(seconds=30)
    run(connection, settings, clock, fake)
    session.refresh(item)
    assert item.status == OutboxStatus.sent
    first, second = fake.calls
    assert first.path == "/hook" and first.method == "POST"
    assert second.json == item.payload and second.json["event"] == "question.answered"
    raw = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert second.headers["x-otklik-signature"] == sign("s3cret-for-signing-0123", raw)
    assert second.headers["x-otklik-delivery"] == first.headers["x-otklik-delivery"] == str(item.id)


def test_deliveries_of_a_paused_subscription_are_cancelled(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    subscription = WebhookSubscription(
        url="https://sed.example.ru/hook",
        secret_enc=CIPHER.encrypt("x" * 20),
        events=["sla.breached"],
    )
    session.add(subscription)
    question = vk_wall(session, clock)
    outgoing.emit(session, "sla.breached", question, clock())
    subscription.is_active = False
    session.add(subscription)
    session.commit()
    fake = FakePlatform([httpx.Response(204)])
    run(connection, settings, clock, fake)
    assert fake.calls == []
    statuses = session.exec(
        select(OutboxItem.status).where(col(OutboxItem.kind) == OutboxKind.webhook)
    ).all()
    assert statuses == [OutboxStatus.cancelled]


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    assert backoff(1, None, 0.0) == 10.0
    assert backoff(3, None, 0.0) == 40.0
    assert backoff(3, None, 0.999) == pytest.approx(60.0, abs=0.1)
    assert backoff(30, None, 0.0) == 3600.0
    assert backoff(1, 17.0, 0.0) == 17.0
    assert 17.0 <= backoff(1, 17.0, 0.999) <= 19.3
