"""The processor's batches: one event that fails leaves the others of its batch processed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.models import Platform
from app.inbox import intake
from app.inbox.models import EventStatus, InboundEvent, Message, OutboxItem, Question
from app.inbox.processor import process_pending
from tests.factories.directory import cipher, make_page

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def _store(engine: sa.Engine, page_id: int, texts: list[str | None]) -> list[int]:
    """Pending deliveries of citizens' new messages; None: a body that is not JSON."""
    ids = []
    with Session(engine) as session:
        for n, text in enumerate(texts):
            body = {
                "id": f"crm-{n}",
                "thread_id": f"crm-thread-{n}",
                "kind": "message",
                "author": {"id": f"citizen-{n}", "name": "Елена Смирнова"},
                "text": text,
                "sent_at": (NOW - timedelta(minutes=10 - n)).isoformat(),
                "from_page": False,
            }
            event = InboundEvent(
                platform="generic",
                page_id=page_id,
                delivery_key=f"crm-{n}",
                body=b"{not json" if text is None else json.dumps(body).encode(),
                received_at=NOW,
            )
            session.add(event)
            session.flush()
            assert event.id is not None
            ids.append(event.id)
        session.commit()
    return ids


@pytest.fixture
def page_id(live_engine: sa.Engine) -> int:
    with Session(live_engine) as session:
        page = make_page(session, platform=Platform.generic)
        session.commit()
        assert page.id is not None
        return page.id


def _drain(engine: sa.Engine) -> int:
    """Process until nothing is pending (on SQLite a batch may stop early); how many."""
    total = 0
    while handled := process_pending(engine, cipher(), lambda: NOW):
        total += handled
    return total


def _statuses(engine: sa.Engine, ids: list[int]) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(InboundEvent).where(col(InboundEvent.id).in_(ids)).order_by(col(InboundEvent.id))
        ).all()
        return [str(row.status) for row in rows]


def test_a_batch_processes_every_event(live_engine: sa.Engine, page_id: int) -> None:
    ids = _store(live_engine, page_id, ["Где автобус?", "Когда уберут снег?", "Нет света"])
    assert _drain(live_engine) == 3
    assert _statuses(live_engine, ids) == ["processed"] * 3
    with Session(live_engine) as session:
        assert len(session.exec(select(Question)).all()) == 3
        assert _drain(live_engine) == 0


def test_a_bad_payload_fails_alone(live_engine: sa.Engine, page_id: int) -> None:
    ids = _store(live_engine, page_id, ["Где автобус?", None, "Нет света"])
    assert _drain(live_engine) == 3
    assert _statuses(live_engine, ids) == ["processed", "failed", "processed"]
    with Session(live_engine) as session:
        failed = session.get(InboundEvent, ids[1])
        assert failed is not None and failed.attempts == 1 and failed.next_attempt_at is None
        assert len(session.exec(select(Question)).all()) == 2


def test_an_event_failing_halfway_leaves_nothing_of_itself(
    live_engine: sa.Engine, page_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = intake.outgoing.outbox_rows

    def explode(session: Session, event: str, question: Any, *args: Any) -> Any:
        if question["text"] == "Нет света":  # the question and its message are written
            raise RuntimeError("outbox exploded")
        return original(session, event, question, *args)

    monkeypatch.setattr(intake.outgoing, "outbox_rows", explode)
    ids = _store(live_engine, page_id, ["Где автобус?", "Нет света", "Когда уберут снег?"])
    assert _drain(live_engine) == 3
    assert _statuses(live_engine, ids) == ["processed", "failed", "processed"]
    with Session(live_engine) as session:
        failed = session.get(InboundEvent, ids[1])
        assert failed is not None and "outbox exploded" in (failed.last_error or "")
        assert failed.next_attempt_at == NOW + timedelta(seconds=30)
        texts = session.exec(select(Question.text).order_by(col(Question.id))).all()
        assert texts == ["Где автобус?", "Когда уберут снег?"]
        assert len(session.exec(select(Message)).all()) == 2
        assert session.exec(select(OutboxItem)).all() == []
        assert [e.status for e in session.exec(select(InboundEvent))].count(
            EventStatus.pending
        ) == 0
