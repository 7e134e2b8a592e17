"""The inbox's periodic jobs: retries of failed deliveries."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from app.core.db import reading_engine
from app.intake.models import EventStatus, InboundEvent
from app.jobs.runner import Job, JobContext
from app.processing.processor import process_one

BATCH = 200


def retry_events(ctx: JobContext) -> int:
    """Process failed deliveries whose backoff has passed (pending ones are the processor's)."""
    now = ctx.clock()
    postgres = ctx.engine.dialect.name == "postgresql"
    # SQLite: a read (no write lock, which webhook intake may be holding on to).
    with Session(ctx.engine if postgres else reading_engine(ctx.engine)) as session:
        query = (
            select(InboundEvent.id)
            .where(
                col(InboundEvent.status) == EventStatus.failed,
                col(InboundEvent.next_attempt_at) <= now,
            )
            .order_by(col(InboundEvent.id))
            .limit(BATCH)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        ids = [i for i in session.exec(query).all() if i is not None]
        if postgres and ids:
            # Push them out of reach of other workers while this one works.
            for event in session.exec(select(InboundEvent).where(col(InboundEvent.id).in_(ids))):
                event.next_attempt_at = now + timedelta(minutes=5)
                session.add(event)
        session.commit()
    for event_id in ids:
        process_one(ctx.engine, event_id, ctx.cipher, ctx.clock)
    return len(ids)


JOBS: list[tuple[str, Job]] = [("retry_events", retry_events)]
