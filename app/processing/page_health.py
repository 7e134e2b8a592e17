"""A page's connection health as Otklik sees it: what arrived lately, what failed, and
a test delivery run through the receiver's own checks and then processed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.core.crypto import Cipher
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake.models import EventStatus, InboundEvent
from app.intake.receive import KnownPage, check
from webhooks.setup import test_delivery

WINDOW = timedelta(hours=24)
_FAILED = (EventStatus.failed, EventStatus.orphaned)


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    last_received_at: datetime | None
    received: int  # in the last 24 h
    failed: int  # of those, failed or orphaned now
    pending: int  # waiting to be processed, any age
    last_error: str | None  # of the newest failed delivery in the window


def delivery_figures(session: Session, page_id: int, now: datetime) -> DeliveryFigures:
    """Figures of the page's stored deliveries (one grouped query, then the last error)."""
    since = now - WINDOW
    events = InboundEvent.__table__  # type: ignore[attr-defined]
    row = (
        session.connection()
        .execute(
            sa.select(
                func.max(events.c.received_at),
                func.count().filter(events.c.received_at >= since),
                func.count().filter(
                    events.c.received_at >= since, events.c.status.in_([s.value for s in _FAILED])
                ),
                func.count().filter(events.c.status == EventStatus.pending.value),
            ).where(events.c.page_id == page_id)
        )
        .one()
    )
    last_error = None
    if row[2]:
        last_error = session.exec(
            select(InboundEvent.last_error)
            .where(
                InboundEvent.page_id == page_id,
                col(InboundEvent.status).in_(_FAILED),
                col(InboundEvent.received_at) >= since,
            )
            .order_by(col(InboundEvent.id).desc())
            .limit(1)
        ).first()
    return DeliveryFigures(
        last_received_at=row[0],
        received=int(row[1] or 0),
        failed=int(row[2] or 0),
        pending=int(row[3] or 0),
        last_error=last_error,
    )


class TestRefused(Exception):
    """The test delivery failed the receiver's checks: the page's settings are wrong."""

    def __init__(self, message_ru: str) -> None:
        super().__init__(message_ru)
        self.message_ru = message_ru


def store_test_delivery(session: Session, page: Page, cipher: Cipher, now: datetime) -> int:
    """Build the platform's test delivery for `page`, check it exactly as the webhook
    receiver does (authenticity, answer, delivery key) and store it pending, like a
    real one. Returns the stored delivery's id (flushed, not committed); raises
    TestRefused when the receiver would have refused it."""
    assert page.id is not None
    page_secrets = directory_service.page_secrets(page, cipher)
    headers, body = test_delivery(page_secrets, secrets.randbelow(10**12) + 1, now)
    known = KnownPage(id=page.id, platform=page.platform, secrets=page_secrets, active=True)
    checked = check(known, headers, body, now)
    if not isinstance(checked, tuple):
        status = checked.status_code
        raise TestRefused(
            "Приёмник Отклика отклонил тестовое событие "
            + (
                "(проверка подлинности: у страницы не задан или испорчен секрет)."
                if status == 403
                else f"(ответ {status})."
            )
        )
    delivery, _ack = checked
    event = InboundEvent(
        platform=delivery.platform,
        page_id=delivery.page_id,
        delivery_key=delivery.delivery_key,
        body=delivery.body,
        received_at=delivery.received_at,
        event_types="test",
    )
    session.add(event)
    session.flush()
    assert event.id is not None
    return event.id
