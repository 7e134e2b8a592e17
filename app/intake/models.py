"""The stored delivery: a webhook request as received, before processing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import EnumText, UTCDateTime, utcnow


class EventStatus(StrEnum):
    pending = "pending"
    processed = "processed"
    ignored = "ignored"
    failed = "failed"
    # An edit, deletion or reply that came before the message it refers to: tried
    # again shortly (`next_attempt_at`), a bounded number of times.
    waiting = "waiting"
    # ... and that message never came: kept, with the reason in `last_error`.
    orphaned = "orphaned"


# A pending delivery, as the partial index `ix_inbound_event_pending` states it: literal
# SQL, for every read of pending deliveries. With a bound parameter (`status = $1`) a
# prepared statement's generic plan cannot take the partial index and reads every
# delivery ever stored (12 ms at 20,000, one such look per processed batch).
IS_PENDING = sa.text("inbound_event.status = 'pending'")


class InboundEvent(SQLModel, table=True):
    """A raw webhook delivery, stored before the platform gets its answer."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        sa.UniqueConstraint("page_id", "delivery_key"),
        sa.Index("ix_inbound_event_status_next", "status", "next_attempt_at"),
        # The processor's claim: the oldest pending deliveries, without sorting them all.
        # Partial, so that PostgreSQL takes it even before statistics see a backlog.
        sa.Index(
            "ix_inbound_event_pending",
            "id",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        # Processed per minute (`/metrics`), without reading every delivery ever stored.
        sa.Index("ix_inbound_event_processed_at", "processed_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    page_id: int = Field(foreign_key="page.id")
    delivery_key: str = Field(max_length=255)
    body: bytes = Field(sa_type=sa.LargeBinary)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: EventStatus = Field(default=EventStatus.pending, sa_type=EnumText(EventStatus))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event_types: str = Field(default="", max_length=255)
