"""The inbox's periodic jobs: retries of failed deliveries."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext
from app.processing.processor import process_one

BATCH = 200
# Seconds between looks for deliveries due again, whatever the worker's interval: one
# that came a few milliseconds before its message is applied within a second
# (`ingest.WAITS`). The look reads an index (status, next_attempt_at).
RETRY_LOOK = 0.5


def retry_events(ctx: JobContext) -> int:
    """Process failed deliveries whose backoff has passed, and those waiting for the
    message they refer to (pending ones are the processor's)."""
    now = ctx.clock()
    due = sa.and_(
        col(InboundEvent.status).in_([EventStatus.failed, EventStatus.waiting]),
        col(InboundEvent.next_attempt_at) <= now,
    )
    if not ctx.anything(sa.select(col(InboundEvent.id)).where(due)):
        return 0  # the usual run: nothing to retry
    postgres = ctx.engine.dialect.name == "postgresql"
    # SQLite: a read (no write lock, which webhook intake may be holding on to).
    with ctx.transaction(reading=not postgres) as session:
        query = select(InboundEvent.id).where(due).order_by(col(InboundEvent.id)).limit(BATCH)
        if postgres:
            query = query.with_for_update(skip_locked=True)
        ids = [i for i in session.exec(query).all() if i is not None]
        if postgres and ids:
            # Push them out of reach of other workers while this one works.
            for event in session.exec(select(InboundEvent).where(col(InboundEvent.id).in_(ids))):
                event.next_attempt_at = now + timedelta(minutes=5)
                session.add(event)
    for event_id in ids:
        if ctx.stopping.is_set():
            break  # the rest come back on PostgreSQL in 5 minutes; on SQLite at once
        # Commits on its own, as it does for the processor thread (fresh deliveries).
        process_one(ctx.engine, event_id, ctx.cipher, ctx.clock)
    return len(ids)
