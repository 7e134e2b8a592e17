"""Outgoing webhooks: events for subscribed systems, queued in the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.core import snapshots
from app.questions.models import OutboxItem, OutboxKind, Question, WebhookSubscription

EVENTS = (
    "question.created",
    "question.answered",
    "question.transferred",
    "sla.warning",
    "sla.breached",
)


@dataclass(frozen=True, slots=True)
class _Subscriber:
    id: int
    events: frozenset[str]


def _load_active(session: Session) -> tuple[_Subscriber, ...]:
    rows = session.exec(
        select(WebhookSubscription)
        .where(col(WebhookSubscription.is_active).is_(True))
        .order_by(col(WebhookSubscription.id))
    ).all()
    return tuple(_Subscriber(row.id, frozenset(row.events)) for row in rows if row.id is not None)


def subscribers(session: Session, event: str) -> list[int]:
    """Ids of the active subscriptions to `event` (a snapshot: see `app.core.snapshots`)."""
    if event not in EVENTS:
        raise ValueError(f"unknown outgoing event {event!r}")
    active = snapshots.get(session, "outgoing.subscribers", _load_active)
    return [s.id for s in active if event in s.events]


def outbox_rows(
    session: Session,
    event: str,
    question: Mapping[str, Any],
    at: datetime,
    data: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows (column values) that queue `event` about `question` (its column
    values, id included) for every active subscription to it."""
    rows = []
    for subscription_id in subscribers(session, event):
        payload = {
            "event": event,
            "occurred_at": at.isoformat(),
            "question": {
                "id": question["id"],
                "page_id": question["page_id"],
                "institution_id": question["institution_id"],
                "platform": question["platform"],
                "status": str(question["status"]),
                "classification": question["classification"],
                "priority": str(question["priority"]),
                "created_at": question["created_at"].isoformat(),
                "permalink": question["permalink"],
            },
            "data": data or {},
        }
        rows.append(
            {
                "kind": OutboxKind.webhook,
                "subscription_id": subscription_id,
                "question_id": question["id"],
                "payload": payload,
                "created_at": at,
                "next_attempt_at": at,
            }
        )
    return rows


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
    values = {name: getattr(question, name) for name in PAYLOAD_COLUMNS}
    rows = outbox_rows(session, event, values, at, data)
    for row in rows:
        session.add(OutboxItem(**row))
    return len(rows)


PAYLOAD_COLUMNS = (
    "id",
    "page_id",
    "institution_id",
    "platform",
    "status",
    "classification",
    "priority",
    "created_at",
    "permalink",
)
