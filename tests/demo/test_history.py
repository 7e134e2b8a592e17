"""The demo region looks like a real one: questions fit their institutions, most are
answered in time, and every state an operator meets is there."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Role, User, UserInstitution
from app.core.config import Settings
from app.demo import history
from app.demo import region as demo_region
from app.demo.phrases import TOPICS, kind_of
from app.directory.models import Institution, Page
from app.questions.models import (
    OPEN_STATUSES,
    Message,
    MessageSource,
    OutboxItem,
    OutboxStatus,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.reports.figures import sla_report
from app.reports.population import ReportFilter
from app.sla.clocks import ANSWERABLE
from app.sla.models import SlaClock, Target
from tests.conftest import SECRET
from tests.live import wipe

NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)  # Wednesday 14:30 in Chelyabinsk
DAYS = 7
OPERATORS = ("adm.chebarkul", "school1.chebarkul", "hospital.chebarkul", "adm.chelyabinsk")


@pytest.fixture(scope="module")
def demo(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[history.Summary]:
    """The demo region seeded and lived in for DAYS days up to NOW, once for the module."""
    wipe(engine)
    settings = Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        secret_key=SECRET,  # type: ignore[arg-type]
        var_dir=Path(tmp_path_factory.mktemp("demo")),
    )
    with Session(engine, expire_on_commit=False) as session:
        demo_region.seed(session, settings)
        session.commit()
    yield history.replay(settings, engine, now=NOW, days=DAYS)
    wipe(engine)


@pytest.fixture
def db(engine: sa.Engine, demo: history.Summary) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def _first_response_states(db: Session, *where: sa.ColumnElement[bool]) -> Counter[str]:
    rows = db.exec(
        select(SlaClock.state)
        .join(Question, col(Question.id) == col(SlaClock.question_id))
        .where(col(SlaClock.target) == Target.first_response, *where)
    ).all()
    return Counter(str(state) for state in rows)


def test_most_questions_are_answered_in_time(db: Session) -> None:
    admin = db.exec(select(User).where(col(User.role) == Role.admin)).one()
    period = ReportFilter(start=NOW - timedelta(days=DAYS + 1), end=NOW, group_by="sector")
    rows = sla_report(db, admin, period)
    on_time = sum(r.on_time for r in rows)
    judged = sum(r.on_time / r.on_time_rate for r in rows if r.on_time_rate)
    assert judged > 100
    assert 0.82 <= on_time / judged <= 0.92, f"{on_time} of {judged:.0f} in time"
    states = _first_response_states(db)
    # Some late, a few breaching right now, a few close to it.
    assert states["missed"] >= 5
    assert 4 <= states["breached"] <= 0.1 * judged
    assert states["warning"] >= 4
    assert states["running"] >= 4


def test_every_state_of_a_question_is_there(db: Session) -> None:
    statuses = Counter(str(s) for s in db.exec(select(Question.status)).all())
    for status in QuestionStatus:
        assert statuses[status] > 0, f"no {status} question"
    assert statuses["answered"] + statuses["closed"] > statuses["new"]
    kinds = Counter(db.exec(select(TimelineEntry.kind)).all())
    for kind in ("transferred", "edited", "deleted", "reply_failed", "sla.warning", "sla.breached"):
        assert kinds[kind] > 0, f"no {kind} on any timeline"
    reasons = db.exec(select(TimelineEntry.data).where(col(TimelineEntry.kind) == "transferred"))
    assert all(data["reason"] for data in reasons)


def test_replies_native_published_failed_and_retrying(db: Session) -> None:
    sources = Counter(str(s) for s in db.exec(select(Message.source)).all())
    assert sources[MessageSource.native] > 20
    assert sources[MessageSource.otklik] > 20
    published = db.exec(
        select(Message).where(
            col(Message.source) == MessageSource.otklik, col(Message.sent_at).is_not(None)
        )
    ).all()
    assert published and all(m.external_id for m in published)
    assert any(m.permalink and m.permalink.startswith("https://vk.com/wall") for m in published)
    failed = db.exec(select(OutboxItem).where(col(OutboxItem.status) == OutboxStatus.failed)).all()
    assert failed and all(item.error_message for item in failed)
    retrying = db.exec(
        select(OutboxItem).where(col(OutboxItem.status) == OutboxStatus.pending)
    ).all()
    assert retrying and all(item.last_error for item in retrying)


def test_threads_have_follow_ups_and_vk_citizens_have_names(db: Session) -> None:
    citizens_messages = Counter(
        db.exec(
            select(Message.question_id).where(col(Message.source) == MessageSource.citizen)
        ).all()
    )
    assert sum(1 for n in citizens_messages.values() if n > 1) >= 10
    vk = db.exec(select(Question.citizen_name).where(col(Question.platform) == "vk")).all()
    assert vk and all(vk)


def test_each_demo_operator_has_open_questions_in_several_sla_states(db: Session) -> None:
    for login in OPERATORS:
        user = db.exec(select(User).where(col(User.login) == login)).one()
        mine = select(UserInstitution.institution_id).where(col(UserInstitution.user_id) == user.id)
        states = _first_response_states(
            db,
            col(Question.institution_id).in_(mine),
            col(Question.status).in_([str(s) for s in OPEN_STATUSES]),
        )
        assert {"running", "warning", "breached"} <= set(states), (login, states)
        waiting = db.exec(
            select(sa.func.count())
            .select_from(Question)
            .where(
                col(Question.institution_id).in_(mine),
                col(Question.status) == QuestionStatus.waiting_citizen,
            )
        ).one()
        assert waiting >= 1, login


def test_questions_fit_the_institution_that_gets_them(db: Session) -> None:
    kind_of_institution = {
        i.id: kind_of(i.name, str(i.sector)) for i in db.exec(select(Institution)).all()
    }
    text_kinds: dict[str, set[str]] = {}
    for kind, texts in TOPICS.items():
        for text in texts:
            text_kinds.setdefault(text, set()).add(kind)
    rows = db.exec(
        select(Question, Page.institution_id)
        .join(Page, col(Page.id) == col(Question.page_id))
        .where(col(Question.classification).in_(ANSWERABLE))
    ).all()
    assert len(rows) > 150
    checked = Counter[str]()
    for question, page_owner in rows:
        text = question.text.removesuffix(" Дополню: вопрос срочный.")
        kinds = text_kinds.get(text)
        assert kinds is not None, f"unknown demo text {text!r}"
        # Asked of the page's institution, or of the one it was transferred to.
        here = {kind_of_institution[question.institution_id], kind_of_institution[page_owner]}
        assert kinds & here, f"{text!r} in the queue of a {here}"
        checked[kind_of_institution[question.institution_id]] += 1
    assert {"hospital", "school", "municipality", "culture_house", "housing"} <= set(checked)


def test_what_needs_no_answer_has_no_deadline(db: Session) -> None:
    rows = db.exec(select(Question).where(col(Question.classification).not_in(ANSWERABLE))).all()
    assert len(rows) >= 10
    assert {q.classification for q in rows} >= {"gratitude"}
    assert all(q.due_at is None for q in rows)
    assert any(q.text == "👍" for q in rows)
