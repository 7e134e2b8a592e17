"""A region's year in bulk (`otklik demo --scale region-year`, small here): every
question has its message and clocks in a state the SLA module could have left, and
the reports count exactly what the generator meant to write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import User
from app.core.config import Settings
from app.demo import region_year
from app.demo.region_year_rows import Intended
from app.questions.models import (
    OPEN_STATUSES,
    Direction,
    Message,
    MessageSource,
    OutboxItem,
    OutboxStatus,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.reports import figures
from app.reports.population import ReportFilter
from app.sla.clocks import ACTIVE, ANSWERABLE
from app.sla.models import ClockState, SlaClock, Target
from tests.conftest import SECRET
from tests.live import wipe

NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
QUESTIONS = 1500
DAYS = 60  # a short "year", so that every recent state shows up at this size


@pytest.fixture(scope="module")
def made(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intended]:
    wipe(engine)
    settings = Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        secret_key=SECRET,  # type: ignore[arg-type]
        var_dir=Path(tmp_path_factory.mktemp("region-year")),
    )
    with Session(engine, expire_on_commit=False) as session:
        intended = region_year.generate(
            session,
            settings,
            questions=QUESTIONS,
            now=NOW,
            days=DAYS,
            chunk=500,
            after_chunk=lambda _: session.commit(),
        )
        session.commit()
    region_year.analyze(engine)
    yield intended
    wipe(engine)


@pytest.fixture
def db(engine: sa.Engine, made: Intended) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def test_every_question_has_its_message_and_clocks(db: Session, made: Intended) -> None:
    questions = db.exec(select(Question)).all()
    assert len(questions) == QUESTIONS == made.questions
    clocks: dict[int, dict[Target, SlaClock]] = {}
    for clock in db.exec(select(SlaClock)):
        clocks.setdefault(clock.question_id, {})[Target(clock.target)] = clock
    citizen = Counter(
        db.exec(select(Message.question_id).where(Message.source == MessageSource.citizen))
    )
    replies = Counter(
        db.exec(select(Message.question_id).where(Message.direction == Direction.outbound))
    )
    sent = {
        m: s for m, s in db.exec(select(OutboxItem.message_id, OutboxItem.status)) if m is not None
    }
    otklik = db.exec(select(Message.id).where(Message.source == MessageSource.otklik)).all()
    assert otklik and all(sent[m] == OutboxStatus.sent for m in otklik)
    for q in questions:
        assert citizen[q.id] == 1
        assert q.created_at <= NOW
        mine = clocks.get(q.id or 0, {})
        if q.classification in ANSWERABLE:
            assert set(mine) == {Target.first_response, Target.final_answer}
        else:
            assert not mine and q.due_at is None
        assert (q.first_response_at is not None) == (replies[q.id] > 0)
        first = mine.get(Target.first_response)
        if first is None:
            continue
        # The queue's sort key is the earliest deadline of the active clocks.
        active = [c.due_at for c in mine.values() if c.state in ACTIVE and c.due_at]
        assert q.due_at == (min(active) if active else None)
        if q.first_response_at is not None:
            assert first.state in (ClockState.met, ClockState.missed)
            assert first.done_at == q.first_response_at
            assert (first.state == ClockState.met) == (q.first_response_at <= (first.due_at or NOW))
        for c in mine.values():
            assert c.due_at is not None and c.warn_at is not None and c.warn_at < c.due_at
            if c.state == ClockState.running:
                assert c.warn_at > NOW and c.check_at == c.warn_at
            if c.state == ClockState.warning:
                assert c.warn_at <= NOW < c.due_at and c.warned_at == c.warn_at
            if c.state in (ClockState.breached, ClockState.missed):
                assert c.breached_at == c.due_at
            if c.state == ClockState.paused:
                assert q.status == QuestionStatus.waiting_citizen and c.paused_at is not None
        if q.status == QuestionStatus.dismissed:
            assert {c.state for c in mine.values()} == {ClockState.none}


def test_every_state_an_operator_meets_is_there(db: Session, made: Intended) -> None:
    states = Counter(str(s) for s in db.exec(select(SlaClock.state)))
    assert states == Counter(made.by_state)
    for state in ("met", "missed", "running", "warning", "breached", "paused", "none"):
        assert states[state] > 0, state
    statuses = Counter(str(s) for s in db.exec(select(Question.status)))
    for status in ("new", "in_progress", "waiting_citizen", "answered", "closed", "dismissed"):
        assert statuses[status] > 0, status
    kinds = Counter(db.exec(select(TimelineEntry.kind)))
    assert kinds["transferred"] == made.transferred > 0
    assert kinds["created"] == QUESTIONS
    assert kinds["sla.breached"] > 0 and kinds["dismissed"] > 0
    # Each breach is recorded once per clock: the watcher's dedupe keys hold.
    keys = db.exec(
        select(TimelineEntry.dedupe_key).where(col(TimelineEntry.dedupe_key).is_not(None))
    )
    assert len(set(keys.all())) == kinds["sla.breached"]
    # The forgotten backlog of one institution: the queue that must stay fast.
    hot_open = db.exec(
        select(sa.func.count())
        .select_from(Question)
        .where(
            Question.institution_id == made.hot_institution_id,
            col(Question.status).in_([str(s) for s in OPEN_STATUSES]),
        )
    ).one()
    assert hot_open >= made.hot_open == int(QUESTIONS * 0.02)


def test_reports_count_what_was_written(db: Session, made: Intended) -> None:
    admin = db.exec(select(User).where(User.login == "admin")).one()
    assert made.start is not None
    f = ReportFilter(made.start, NOW + timedelta(seconds=1), group_by="total")
    (row,) = figures.sla_report(db, admin, f, now=NOW)
    assert row.questions == made.questions
    assert row.answered == made.answered
    assert row.on_time == made.on_time
    assert row.late == made.judged - made.on_time
    assert row.open == made.open
    assert row.dismissed == made.dismissed
    assert row.breached == made.breached
    assert row.answered_otklik == made.answered_otklik
    assert row.answered_native == made.answered - made.answered_otklik
    assert row.transferred_out == made.transferred
    assert row.median_first_response_working_minutes == round(
        figures.percentile(made.working, 0.5) or 0, 1
    )
    assert row.p90_first_response_working_minutes == round(
        figures.percentile(made.working, 0.9) or 0, 1
    )
    assert row.median_first_response_wall_minutes == round(
        figures.percentile(made.wall, 0.5) or 0, 1
    )
    # A region's norms: most first responses in time, as the generator intends.
    assert 0.8 < made.on_time / made.judged < 0.92
