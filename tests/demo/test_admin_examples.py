"""The demo gives every administration page something to show: a page of every kind of
source, an outgoing-webhook subscription with past deliveries, failed deliveries."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.core.config import Settings
from app.demo import region as demo_region
from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.questions.models import OutboxItem, WebhookSubscription


def test_demo_connects_every_kind_of_page(session: Session, settings: Settings) -> None:
    created = demo_region.seed(session, settings)
    platforms = set(session.exec(select(Page.platform)).all())
    assert platforms == set(Platform)
    assert created.pages == len(session.exec(select(Page.id)).all())
    (subscription,) = session.exec(select(WebhookSubscription)).all()
    assert not subscription.is_active
    deliveries = session.exec(
        select(OutboxItem).where(OutboxItem.subscription_id == subscription.id)
    ).all()
    assert {str(d.status) for d in deliveries} == {"sent", "failed"}
    failed = session.exec(
        select(InboundEvent).where(col(InboundEvent.status) == EventStatus.failed)
    ).all()
    assert {e.platform for e in failed} == {"vk", "generic"}
    assert all(e.last_error and e.last_error.startswith("Malformed: ") for e in failed)
    assert all(b"secret" not in e.body for e in failed)
