"""Outgoing webhooks: events for subscribed systems, queued in the outbox in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.inbox.models import OutboxItem, OutboxKind, Question, WebhookSubscription

EVENTS = (
    "question.created",
    "question.answered",
    "question.transferred",
    "sla.warning",
    "sla.breached",
)


def emit(
    session: Session,
    event: str,
    question: Question,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> int:
    """Queue `event` for every active subscription to it; returns how many were queued.

    The outbox items are added to the session, written by its next flush or commit.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown outgoing event {event!r}")
    # Subscriptions are flushed when written; whatever the caller has pending (the
    # question itself) goes with the outbox items in its next flush.
    with session.no_autoflush:
        subscriptions = session.exec(
            select(WebhookSubscription).where(col(WebhookSubscription.is_active).is_(True))
        ).all()
    queued = 0
    for subscription in subscriptions:
        if event not in subscription.events:
            continue
        session.add(
            OutboxItem(
                kind=OutboxKind.webhook,
                subscription_id=subscription.id,
                question_id=question.id,
                payload={
                    "event": event,
                    "occurred_at": at.isoformat(),
                    "question": {
                        "id": question.id,
                        "page_id": question.page_id,
                        "institution_id": question.institution_id,
                        "platform": question.platform,
                        "status": str(question.status),
                        "classification": question.classification,
                        "priority": str(question.priority),
                        "created_at": question.created_at.isoformat(),
                        "permalink": question.permalink,
                    },
                    "data": data or {},
                },
                created_at=at,
                next_attempt_at=at,
            )
        )
        queued += 1
    return queued
