"""The SLA sweep and processing meet on a question's row and its clocks (PostgreSQL).

Processing locks a question and then its clocks (a citizen's follow-up). A sweep that
claimed the clocks and then waited for the question (its UPDATE, or the foreign key
check of a timeline entry) deadlocked with it; it was seen in a drain of the realistic
mix. The sweep now claims a clock only with its question, skipping a question another
transaction holds, so it never waits for processing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.questions.models import Question
from app.sla import watcher
from app.sla.models import SlaClock
from tests.factories.directory import make_page
from tests.factories.questions import make_question

CREATED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)


@pytest.mark.postgres
def test_the_sweep_skips_the_clocks_of_a_question_processing_holds(
    live_engine: sa.Engine, settings: Settings
) -> None:
    with Session(live_engine, expire_on_commit=False) as session:
        page = make_page(session)
        assert page.id is not None
        held, free = (
            make_question(session, page_id=page.id, created_at=CREATED, thread_key=f"t{n}")
            for n in (1, 2)
        )
        session.commit()
    with live_engine.connect() as processing:
        # A follow-up to the first question holds its row, as `ingest._citizen_message`.
        processing.execute(
            sa.select(col(Question.id)).where(col(Question.id) == held.id).with_for_update()
        ).all()
        with Session(live_engine) as sweeping:
            # Waiting would be a failure here (and, with the follow-up's clock update
            # waiting for the sweep, a deadlock).
            sweeping.connection().exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            now = datetime.now(UTC)
            claimed = watcher.due_clocks(sweeping, now)
            assert claimed and {c.question_id for c in claimed} == {free.id}
            assert watcher.sweep(sweeping, now, settings) > 0
            sweeping.commit()
        processing.rollback()
    with Session(live_engine) as session:
        due = session.exec(
            select(SlaClock.question_id).where(
                col(SlaClock.check_at) <= datetime.now(UTC),
                col(SlaClock.state).in_(watcher.WATCHED),
            )
        ).all()
        assert set(due) == {held.id}  # left for the next sweep
        assert {c.question_id for c in watcher.due_clocks(session, datetime.now(UTC))} == {held.id}
