"""Outgoing webhook subscriptions: an administrator's list of URLs that receive events."""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.core.errors import Invalid, NotFound
from app.outbox.models import SubscriptionCreate, SubscriptionUpdate
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
from app.questions.outgoing import EVENTS


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise Invalid(
            f"Неизвестные события: {', '.join(unknown)}. Доступны: {', '.join(EVENTS)}",
            code="unknown_event",
        )
    # Keep the order given, without repeats.
    return list(dict.fromkeys(events))


def create(
    session: Session, data: SubscriptionCreate, cipher: Cipher, *, now: datetime
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (returned once; stored encrypted)."""
    secret = data.secret or random_secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        url=data.url,
        secret_enc=cipher.encrypt(secret),
        events=_check_events(data.events),
        is_active=True,
        created_at=now,
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def get(session: Session, subscription_id: int) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound("Подписка не найдена", code="subscription_not_found")
    return subscription


def list_all(session: Session, *, after_id: int, limit: int) -> Sequence[WebhookSubscription]:
    return session.exec(
        select(WebhookSubscription)
        .where(col(WebhookSubscription.id) > after_id)
        .order_by(col(WebhookSubscription.id))
        .limit(limit)
    ).all()


def update(session: Session, subscription_id: int, data: SubscriptionUpdate) -> WebhookSubscription:
    subscription = get(session, subscription_id)
    if data.url is not None:
        subscription.url = data.url
    if data.events is not None:
        subscription.events = _check_events(data.events)
    if data.is_active is not None:
        subscription.is_active = data.is_active
    session.add(subscription)
    session.flush()
    return subscription


def delete(session: Session, subscription_id: int) -> None:
    """Remove the subscription; deliveries still waiting are cancelled, past ones kept."""
    subscription = get(session, subscription_id)
    items = col(OutboxItem.subscription_id) == subscription.id
    session.execute(
        sa.update(OutboxItem)
        .where(items, col(OutboxItem.status).in_([OutboxStatus.pending, OutboxStatus.failed]))
        .values(status=OutboxStatus.cancelled)
    )
    session.execute(
        sa.update(OutboxItem)
        .where(items, col(OutboxItem.kind) == OutboxKind.webhook)
        .values(subscription_id=None)
    )
    session.delete(subscription)
    session.flush()
