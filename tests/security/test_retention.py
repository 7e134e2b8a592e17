"""Personal data retention: past its institution's period a finished question keeps its
figures and loses its citizen's name, ids and texts; raw deliveries go too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.answering import service as answering
from app.auth.models import Role
from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory.models import Institution
from app.intake import retention as delivery_retention
from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext
from app.questions import retention
from app.questions.models import Message, MessageSource, Question, QuestionStatus
from app.sla.models import SlaClock
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import make_question

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CITIZEN = "Ирина Смирнова"
TEXT = "Когда отремонтируют дорогу на улице Садовой у дома 5? Ирина, тел. 89001234567"


def _institution(session: Session, days: int | None) -> Institution:
    institution = make_institution(session)
    institution.retention_days = days
    session.add(institution)
    session.flush()
    return institution


def _finished(session: Session, institution: Institution, days_ago: int, **kw: Any) -> Question:
    at = NOW - timedelta(days=days_ago)
    question = make_question(
        session,
        institution_id=institution.id,
        page_id=make_page(session, institution_id=institution.id).id,
        text=TEXT,
        citizen_name=CITIZEN,
        created_at=at - timedelta(days=2),
        now=at - timedelta(days=2),
        **kw,
    )
    if question.status != QuestionStatus.closed and "status" not in kw:
        staff = make_user(session, Role.admin, password=None)
        answering.add_note(session, question, text=f"Позвонить {CITIZEN}", by=staff, now=at)
        answering.set_status(session, question, answering.StatusChange.closed, by=staff, now=at)
    return question


def _figures(session: Session, question: Question) -> list[tuple[Any, ...]]:
    clocks = session.exec(select(SlaClock).where(SlaClock.question_id == question.id)).all()
    return sorted(
        (str(c.target), str(c.state), c.due_at, c.working_minutes, c.wall_minutes) for c in clocks
    )


def _messages(session: Session, question: Question) -> list[Message]:
    return list(session.exec(select(Message).where(Message.question_id == question.id)).all())


def test_finished_questions_lose_personal_data_after_their_period(session: Session) -> None:
    regional = _institution(session, None)  # the regional default: 365 days below
    short = _institution(session, 30)
    forever = _institution(session, 0)
    old = _finished(session, regional, 400)
    recent = _finished(session, regional, 100)
    still_open = _finished(session, regional, 800, status=QuestionStatus.in_progress)
    short_old = _finished(session, short, 40)
    kept_for_good = _finished(session, forever, 3000)
    figures = {q.id: _figures(session, q) for q in (old, short_old)}
    assert all(figures.values())

    erased = retention.erase(session, NOW, default_days=365)
    assert erased == 2
    session.expire_all()
    for question in (old, short_old):
        assert question.citizen_name == "" and question.citizen_platform_id == ""
        assert question.text == retention.ERASED and question.permalink is None
        # The figures stay: status, times, institution and every SLA clock.
        assert question.status == QuestionStatus.closed and question.closed_at is not None
        assert _figures(session, question) == figures[question.id]
        messages = _messages(session, question)
        assert {m.source for m in messages} == {MessageSource.citizen, MessageSource.note}
        for message in messages:
            assert message.text == retention.ERASED
            assert message.attachments == [] and message.previous_texts == []
            if message.source == MessageSource.citizen:
                assert message.author_name == "" and message.author_id == ""
            else:
                assert message.author_name  # staff stay named
    for question in (recent, still_open, kept_for_good):
        assert question.citizen_name == CITIZEN and question.text == TEXT
        assert all(CITIZEN in m.text or m.text == TEXT for m in _messages(session, question))
    assert retention.erase(session, NOW, default_days=365) == 0  # done once
    assert retention.erase(session, NOW + timedelta(days=300), default_days=0) == 0
    session.expire_all()
    assert recent.text == TEXT  # a default of 0 keeps everything not set otherwise


def test_batches_end_when_nothing_is_left(session: Session) -> None:
    regional = _institution(session, None)
    for _ in range(3):
        _finished(session, regional, 400)
    assert retention.erase(session, NOW, default_days=365, batch=2) == 2
    assert retention.erase(session, NOW, default_days=365, batch=2) == 1
    assert retention.erase(session, NOW, default_days=365, batch=2) == 0


@pytest.fixture
def job_context(
    connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> Callable[[datetime], JobContext]:
    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    def make(now: datetime) -> JobContext:
        clock.now = now
        return JobContext(
            engine=connection.engine,
            settings=settings.model_copy(update={"retention_days": 365}),
            clock=clock,
            http=httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(500))),
            cipher=Cipher(SECRET),
            session_factory=sessions,
        )

    return make


def test_the_jobs_erase_questions_and_old_deliveries(
    session: Session, job_context: Callable[[datetime], JobContext]
) -> None:
    regional = _institution(session, None)
    page = make_page(session, institution_id=regional.id)
    question = _finished(session, regional, 400)

    def delivery(key: str, days_ago: int, status: EventStatus) -> None:
        session.add(
            InboundEvent(
                platform="vk",
                page_id=page.id or 0,
                delivery_key=key,
                body=f'{{"text": "{TEXT}"}}'.encode(),
                received_at=NOW - timedelta(days=days_ago),
                status=status,
            )
        )

    delivery("old", 400, EventStatus.processed)
    delivery("old-ignored", 500, EventStatus.ignored)
    delivery("old-failed", 400, EventStatus.failed)  # an administrator may still need it
    delivery("recent", 10, EventStatus.processed)
    session.flush()
    ctx = job_context(NOW)
    assert retention.erase_expired(ctx) == 1
    assert delivery_retention.erase_old_deliveries(ctx) == 2
    assert delivery_retention.erase_old_deliveries(ctx) == 0
    session.expire_all()
    left = session.exec(
        select(InboundEvent.delivery_key).where(col(InboundEvent.page_id) == page.id)
    ).all()
    assert sorted(left) == ["old-failed", "recent"]
    assert session.get(Question, question.id).citizen_name == ""  # type: ignore[union-attr]


def test_an_administrator_sets_an_institutions_period_in_the_directory_and_the_api(
    client: TestClient, session: Session
) -> None:
    from app.auth.models import AuditEvent
    from tests.factories.admin_web import sign_in
    from tests.factories.auth import auth_headers

    school = _institution(session, None)
    question = _finished(session, school, 40)
    _, csrf = sign_in(client, session)
    url = f"/admin/directory/institutions/{school.id}"
    page = client.get(url)
    assert "Срок хранения персональных данных" in page.text
    assert "Пусто — срок по умолчанию (1095 дн.)" in page.text  # OTKLIK_RETENTION_DAYS
    form = {
        "csrf_token": csrf,
        "name": school.name,
        "sector": str(school.sector),
        "territory_id": str(school.territory_id),
        "parent_id": "",
    }
    for wrong in ("тридцать", "-5", "36501"):
        refused = client.post(url, data=form | {"retention_days": wrong})
        assert refused.status_code == 422, wrong
        assert "Укажите число дней от 0 до 36500" in refused.text
        assert f'value="{wrong}"' in refused.text  # kept for correction
    session.expire_all()
    assert session.get(Institution, school.id).retention_days is None  # type: ignore[union-attr]

    saved = client.post(url, data=form | {"retention_days": " 30 "}, follow_redirects=False)
    assert saved.status_code == 303
    session.expire_all()
    assert session.get(Institution, school.id).retention_days == 30  # type: ignore[union-attr]
    entry = session.exec(select(AuditEvent).where(AuditEvent.action == "institution.update")).one()
    assert (entry.before, entry.after) == ({"retention_days": None}, {"retention_days": 30})
    assert 'value="30"' in client.get(url).text
    # The job honours it: 40 days after closing is past 30, though not past 365.
    assert retention.erase(session, NOW, default_days=365) == 1
    session.expire_all()
    assert question.citizen_name == "" and question.text == retention.ERASED

    # The API reads and sets it too; null goes back to the regional default.
    headers = auth_headers(session, make_user(session, Role.admin))
    api = f"/api/v1/institutions/{school.id}"
    assert client.get(api, headers=headers).json()["retention_days"] == 30
    assert client.patch(api, json={"retention_days": -1}, headers=headers).status_code == 422
    back = client.patch(api, json={"retention_days": None}, headers=headers)
    assert back.status_code == 200 and back.json()["retention_days"] is None
    # 0 keeps the data for good.
    client.post(url, data=form | {"retention_days": "0"}, follow_redirects=False)
    session.expire_all()
    assert session.get(Institution, school.id).retention_days == 0  # type: ignore[union-attr]
