"""A question already overdue when it arrives: its clocks are written moved on (warned,
breached, escalated) with their alerts, in the event's own writes (on SQLite in the
worker's batches, whose held clocks take their ids ahead; a test's question made one
event at a time is left to the sweep there). Either way each alert goes once, to the
right people."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.core.config import Settings
from app.directory.models import Platform
from app.intake.models import InboundEvent
from app.processing.processor import process_pending
from app.questions.models import OutboxItem, Question, WebhookSubscription
from app.sla import escalation, watcher
from app.sla import service as sla
from app.sla.models import ClockState, Target
from tests.factories.auth import make_user
from tests.factories.directory import cipher, make_institution, make_page, make_territory
from tests.factories.questions import make_question
from tests.sla.test_watcher import DUE, ESCALATE, T0, WARN, _alerts, _entries, _world


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _events(session: Session, question: Question) -> list[str]:
    rows = session.exec(
        select(OutboxItem).where(OutboxItem.question_id == question.id).order_by(col(OutboxItem.id))
    ).all()
    return [row.payload["event"] for row in rows]


def test_a_question_past_its_escalation_arrives_breached_and_escalated(
    session: Session, settings: Settings
) -> None:
    world = _world(session)
    session.add(WebhookSubscription(url="https://crm.example/h", events=["sla.breached"]))
    now = ESCALATE + timedelta(minutes=5)
    with escalation.alerting(session, settings):
        question = make_question(session, page_id=world["page"].id, created_at=T0, now=now)
    first = sla.clocks_of(session, question)[Target.first_response]
    if _postgres(session):
        # Written moved on: the sweep has nothing to read back.
        assert (first.state, first.escalation_level, first.check_at) == (
            ClockState.breached,
            3,
            None,
        )
        assert first.breached_at == now
        assert watcher.sweep(session, now, settings) == 0
    else:
        # SQLite, one event at a time: a clock gets its id at its INSERT, the sweep raises them.
        assert first.state == ClockState.running
        assert watcher.sweep(session, now, settings) == 1
    assert watcher.sweep(session, now + timedelta(minutes=1), settings) == 0
    session.refresh(question)
    assert question.due_at == DUE  # a breached deadline stays at the head of the queue
    assert _entries(session, question) == ["sla.breached", "sla.escalated"]
    assert _alerts(session, world["operator"]) == ["sla.breached"]
    assert _alerts(session, world["town"]) == ["sla.breached"]
    assert _alerts(session, world["region"]) == ["sla.escalated"]
    assert _alerts(session, world["elsewhere"]) == []
    assert _events(session, question) == ["sla.breached"]


def test_a_question_past_its_warning_arrives_warned(session: Session, settings: Settings) -> None:
    world = _world(session)
    now = WARN + timedelta(minutes=5)
    with escalation.alerting(session, settings):
        question = make_question(session, page_id=world["page"].id, created_at=T0, now=now)
    first = sla.clocks_of(session, question)[Target.first_response]
    if not _postgres(session):
        assert watcher.sweep(session, now, settings) == 1
    assert (first.state, first.check_at, first.warned_at) == (ClockState.warning, DUE, now)
    assert _alerts(session, world["operator"]) == ["sla.warning"]
    assert _alerts(session, world["town"]) == []
    # Its deadline then comes as for any question.
    assert watcher.sweep(session, DUE + timedelta(seconds=30), settings) == 1
    assert _entries(session, question) == ["sla.warning", "sla.breached"]
    assert _alerts(session, world["town"]) == ["sla.breached"]


def test_a_question_on_time_raises_nothing_at_arrival(session: Session, settings: Settings) -> None:
    world = _world(session)
    with escalation.alerting(session, settings):
        question = make_question(session, page_id=world["page"].id, created_at=T0, now=T0)
    assert sla.clocks_of(session, question)[Target.first_response].state == ClockState.running
    assert _entries(session, question) == []
    assert _alerts(session, world["operator"]) == []


def test_the_worker_raises_the_alerts_of_a_batch_of_overdue_arrivals_once(
    live_engine: sa.Engine, settings: Settings
) -> None:
    with Session(live_engine, expire_on_commit=False) as session:
        town = make_territory(session)
        institution = make_institution(session, territory_id=town.id)
        page = make_page(session, institution_id=institution.id, platform=Platform.generic)
        operator = make_user(session, Role.operator, institution_ids=[institution.id])
        supervisor = make_user(session, Role.supervisor, territory_id=town.id)
        session.commit()
        assert page.id is not None
        page_id = page.id
    now = ESCALATE + timedelta(minutes=5)
    with Session(live_engine) as session:
        for n in range(12):
            session.add(_generic(page_id, f"old-{n}", f"old-{n}", 0, page=False))
        session.commit()
    while process_pending(live_engine, cipher(), lambda: now, settings=settings):
        pass
    with Session(live_engine) as session:
        questions = session.exec(select(Question).where(Question.page_id == page_id)).all()
        assert len(questions) == 12
        breached = [
            sla.clocks_of(session, q)[Target.first_response].state == ClockState.breached
            for q in questions
        ]
        # In the worker's batches on both databases (SQLite's held clocks take their ids
        # ahead, `held.take_id`).
        assert all(breached)
        while watcher.sweep(session, now, settings):
            pass
        assert watcher.sweep(session, now + timedelta(minutes=1), settings) == 0
        assert all(_entries(session, q) == ["sla.breached", "sla.escalated"] for q in questions)
        assert _alerts(session, operator) == ["sla.breached"] * 12
        assert _alerts(session, supervisor) == ["sla.breached"] * 12
        session.rollback()


def _generic(page_id: int, key: str, thread: str, minutes: int, *, page: bool) -> InboundEvent:
    body = {
        "id": key,
        "thread_id": thread,
        "kind": "comment",
        "author": {"id": "editor" if page else "citizen-" + thread, "name": "Елена"},
        "text": "Спасибо, ответили." if page else f"Когда починят дорогу ({key})?",
        "sent_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "from_page": page,
    }
    return InboundEvent(
        platform="generic",
        page_id=page_id,
        delivery_key=key,
        body=json.dumps(body).encode(),
        received_at=T0 + timedelta(minutes=minutes, seconds=2),
    )


def test_a_follow_ups_clock_and_new_questions_clocks_in_one_batch_take_distinct_ids(
    live_engine: sa.Engine, settings: Settings, monkeypatch: Any
) -> None:
    """A batch holds a new question's clocks with ids taken ahead; a follow-up in the same
    batch then makes its next-response clock through the ORM, which must not take one of
    those ids (on SQLite the batch then failed at its end and was done again one by one)."""
    from app.processing import processor

    def redone(*_: object) -> None:
        raise AssertionError("the batch failed and was done again one event at a time")

    monkeypatch.setattr(processor, "process_one", redone)
    with Session(live_engine) as session:
        page = make_page(session, platform=Platform.generic)
        session.commit()
        assert page.id is not None
        page_id = page.id
    now = ESCALATE + timedelta(days=1)
    with Session(live_engine) as session:
        session.add(_generic(page_id, "a-0", "a", 0, page=False))
        session.add(_generic(page_id, "a-1", "a", 30, page=True))  # the page answers
        session.commit()
    while process_pending(live_engine, cipher(), lambda: now, settings=settings):
        pass
    with Session(live_engine) as session:
        for n in range(3):  # new questions first, then the follow-up, in one batch
            session.add(_generic(page_id, f"b{n}-0", f"b{n}", 60 + n, page=False))
        session.add(_generic(page_id, "a-2", "a", 120, page=False))
        session.commit()
    assert process_pending(live_engine, cipher(), lambda: now, settings=settings) == 4
    with Session(live_engine) as session:
        questions = session.exec(select(Question).where(Question.page_id == page_id)).all()
        assert len(questions) == 4
        targets = {
            (q.thread_key, str(target)) for q in questions for target in sla.clocks_of(session, q)
        }
        assert ("a", "next_response") in targets
        new = [q for q in questions if q.thread_key != "a"]
        assert all(_entries(session, q) == ["sla.breached", "sla.escalated"] for q in new)
