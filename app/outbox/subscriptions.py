"""Outgoing webhook subscriptions: an administrator's list of URLs that receive events."""

from __future__ import annotations

import ipaddress
import secrets as random_secrets
import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.core.errors import Invalid, NotFound
from app.outbox.models import SubscriptionCreate, SubscriptionUpdate
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
from app.questions.outgoing import EVENTS

Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # unknown now: nothing to refuse; delivery fails and is retried
    return [str(info[4][0]) for info in infos]


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_target(url: str, *, allow_private: bool, resolve: Resolver = _resolve) -> None:
    """Refuse (Invalid) a subscription URL that is not http(s), or whose host is or
    resolves to a loopback, private, link-local or otherwise non-public address: events
    must not be a way to reach the services beside Otklik. `allow_private`
    (OTKLIK_OUTGOING_WEBHOOKS_ALLOW_PRIVATE) lifts the address check for an
    administrator whose receiver is inside their own network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("Адрес подписки должен начинаться с http:// или https://", code="bad_url")
    if allow_private:
        return
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Invalid("В адресе подписки неверный порт", code="bad_url") from exc
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolve(host, port)
    if any(_internal(address) for address in addresses):
        raise Invalid(
            "Адрес подписки ведёт во внутреннюю сеть или на этот сервер. Укажите "
            "публичный адрес (внутренние разрешает настройка "
            "OTKLIK_OUTGOING_WEBHOOKS_ALLOW_PRIVATE).",
            code="subscription_url_private",
        )


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
    session: Session,
    data: SubscriptionCreate,
    cipher: Cipher,
    *,
    now: datetime,
    allow_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (returned once; stored encrypted)."""
    check_target(data.url, allow_private=allow_private)
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


def update(
    session: Session, subscription_id: int, data: SubscriptionUpdate, *, allow_private: bool = False
) -> WebhookSubscription:
    subscription = get(session, subscription_id)
    if data.url is not None:
        check_target(data.url, allow_private=allow_private)
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


TEST_EVENT = "test"


def send_test(session: Session, subscription_id: int, *, now: datetime) -> OutboxItem:
    """Queue a signed `test` event for this one subscription (delivered by the outbox
    like any event, with its retries); returns the queued item."""
    subscription = get(session, subscription_id)
    item = OutboxItem(
        kind=OutboxKind.webhook,
        subscription_id=subscription.id,
        payload={
            "event": TEST_EVENT,
            "occurred_at": now.isoformat(),
            "data": {"message": "Проверка подписки из Отклика"},
        },
        created_at=now,
        next_attempt_at=now,
    )
    session.add(item)
    session.flush()
    return item


def recent_deliveries(
    session: Session, subscription_ids: Sequence[int], *, per_subscription: int = 5
) -> dict[int, list[OutboxItem]]:
    """The newest deliveries of each subscription, newest first (one query)."""
    if not subscription_ids:
        return {}
    ranked = (
        sa.select(
            col(OutboxItem.id).label("id"),
            sa.func.row_number()
            .over(
                partition_by=col(OutboxItem.subscription_id),
                order_by=col(OutboxItem.id).desc(),
            )
            .label("n"),
        )
        .where(
            col(OutboxItem.kind) == OutboxKind.webhook,
            col(OutboxItem.subscription_id).in_(subscription_ids),
        )
        .subquery()
    )
    rows = session.exec(
        select(OutboxItem)
        .join(ranked, col(OutboxItem.id) == ranked.c.id)
        .where(ranked.c.n <= per_subscription)
        .order_by(col(OutboxItem.id).desc())
    ).all()
    found: dict[int, list[OutboxItem]] = {i: [] for i in subscription_ids}
    for item in rows:
        if item.subscription_id is not None:
            found.setdefault(item.subscription_id, []).append(item)
    return found
