"""A page's reply in a private conversation names no message: one that overtook the
citizen's first message on the way waits a moment for it; a page that writes first
(a mailing) is applied after that moment, as before, and never kept as an orphan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.demo import deliveries as d
from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext
from app.processing import ingest
from app.processing.jobs import retry_events
from app.processing.processor import process_pending
from app.questions.models import Message, MessageSource, Question, QuestionStatus
from tests.factories.deliveries import store_vk, vk_page
from tests.factories.directory import cipher

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
CITIZEN = "512348907"
STEP = 0.5  # seconds between the retry job's looks (`jobs.RETRY_LOOK`)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _run(engine: sa.Engine, settings: Settings, clock: Clock, seconds: float) -> None:
    """Process what is stored, then the retries due over the next `seconds`."""
    with httpx.Client() as http:
        ctx = JobContext(engine, settings, clock, http, cipher())
        process_pending(engine, cipher(), clock)
        for _ in range(round(seconds / STEP)):
            clock.now += timedelta(seconds=STEP)
            retry_events(ctx)


def _statuses(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        events = session.exec(select(InboundEvent).order_by(col(InboundEvent.id))).all()
        return [str(e.status) for e in events]


def test_a_reply_that_overtook_the_citizens_first_message_answers_it(
    live_engine: sa.Engine, settings: Settings
) -> None:
    page_id, page = vk_page(live_engine)
    reply = d.vk_page_message(page, CITIZEN, 11, "Здравствуйте! Запись открыта.", AT)
    store_vk(live_engine, page_id, page, [reply])
    clock = Clock()
    process_pending(live_engine, cipher(), clock)
    assert _statuses(live_engine) == [EventStatus.waiting]

    first = d.vk_message(page, CITIZEN, 10, "Как записаться в кружок?", AT - timedelta(minutes=5))
    store_vk(live_engine, page_id, page, [first])
    _run(live_engine, settings, clock, seconds=ingest.WAITS[0])

    assert _statuses(live_engine) == [EventStatus.processed, EventStatus.processed]
    with Session(live_engine) as session:
        question = session.exec(select(Question)).one()
        assert question.status == QuestionStatus.answered
        sources = session.exec(
            select(Message.source).where(col(Message.question_id) == question.id)
        ).all()
        assert sorted(sources) == sorted([MessageSource.citizen, MessageSource.native])


def test_a_page_that_writes_first_is_applied_after_a_moment_not_kept_waiting(
    live_engine: sa.Engine, settings: Settings
) -> None:
    page_id, page = vk_page(live_engine)
    store_vk(live_engine, page_id, page, [d.vk_page_message(page, CITIZEN, 11, "Рассылка", AT)])
    clock = Clock()
    _run(live_engine, settings, clock, seconds=sum(ingest.WAITS[: ingest.NEW_THREAD_WAITS]) + 1)

    assert _statuses(live_engine) == [EventStatus.processed]
    with Session(live_engine) as session:
        assert session.exec(select(Question)).all() == []
        event = session.exec(select(InboundEvent)).one()
        assert event.attempts == ingest.NEW_THREAD_WAITS
