"""Raw deliveries past their institution's personal-data period are deleted.

A stored delivery holds what the platform sent: the citizen's text and, on most
platforms, name. Once processed (or ignored, or kept as an orphan) and older than
the period of the institution that owns its page (see app/questions/retention.py
for the questions themselves), nothing needs it: the platforms do not deliver an
event again years later, and the figures are read from questions and clocks.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from app.directory import retention
from app.directory.models import Institution, Page
from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext

BATCH = 1000
INTERVAL = 3600.0  # seconds between idle runs
DONE = (EventStatus.processed, EventStatus.ignored, EventStatus.orphaned)


def erase_old_deliveries(ctx: JobContext) -> int:
    """The periodic job: deletes up to BATCH deliveries; returns how many."""
    now = ctx.clock()
    deleted = 0
    with ctx.transaction() as session:
        for days, which in retention.periods(session, ctx.settings.retention_days):
            pages = select(Page.id).where(
                col(Page.institution_id).in_(select(Institution.id).where(which))
            )
            ids = session.exec(
                select(InboundEvent.id)
                .where(
                    col(InboundEvent.page_id).in_(pages),
                    col(InboundEvent.received_at) < now - timedelta(days=days),
                    col(InboundEvent.status).in_([str(s) for s in DONE]),
                )
                .order_by(col(InboundEvent.id))
                .limit(BATCH - deleted)
            ).all()
            if ids:
                session.execute(sa.delete(InboundEvent).where(col(InboundEvent.id).in_(ids)))
                deleted += len(ids)
            if deleted >= BATCH:
                break
    return deleted
