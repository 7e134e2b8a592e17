"""The processor's batches: one event that fails leaves the others of its batch processed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.models import Platform
from app.intake.models import EventStatus, InboundEvent
from app.processing import ingest as inbox_service
from app.processing import new_question as intake
from app.processing.processor import process_pending
from app.questions.models import Message, OutboxItem, Question, TimelineEntry, WebhookSubscription
from app.questions.outgoing import EVENTS
from app.sla.models import SlaClock
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


def _drain(engine: sa.Engine, now: datetime = NOW) -> int:
    """Process until nothing is pending (on SQLite a batch may stop early); how many."""
    total = 0
    while handled := process_pending(engine, cipher(), lambda: now):
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


def _delivery(page_id: int, n: int, minutes: int, *, from_page: bool) -> InboundEvent:
    body = {
        "id": f"thread-{page_id}-{n}",
        "thread_id": f"thread-{page_id}",
        "kind": "comment",
        "author": {"id": "editor" if from_page else "citizen", "name": "Елена"},
        "text": f"Сообщение {n}: когда починят дорогу?",
        "sent_at": (NOW + timedelta(minutes=minutes)).isoformat(),
        "from_page": from_page,
    }
    if from_page and n > 2:  # to the follow-up (the thread's question may be answered)
        body["reply_to"] = f"thread-{page_id}-2"
    return InboundEvent(
        platform="generic",
        page_id=page_id,
        delivery_key=str(body["id"]),
        body=json.dumps(body).encode(),
        received_at=NOW + timedelta(minutes=minutes, seconds=2),
    )


# A question, the page's answer and a follow-up; a reply written before the follow-up
# but delivered after it (the next-response clock runs on), the answer to the
# follow-up, one more reply to it.
_THREAD = [(0, False), (90, True), (200, False), (150, True), (600, True), (700, True)]


def _outcome(engine: sa.Engine, page_id: int) -> dict[str, Any]:
    """What the thread's events left: the question, its clocks, timeline and outbox."""
    with Session(engine) as session:
        question = session.exec(select(Question).where(col(Question.page_id) == page_id)).one()
        skip = {"id", "page_id", "institution_id", "thread_key", "permalink", "received_at"}
        clocks = session.exec(
            select(SlaClock).where(col(SlaClock.question_id) == question.id)
        ).all()
        timeline = session.exec(
            select(TimelineEntry)
            .where(col(TimelineEntry.question_id) == question.id)
            .order_by(col(TimelineEntry.id))
        ).all()
        outbox = session.exec(
            select(OutboxItem)
            .where(col(OutboxItem.question_id) == question.id)
            .order_by(col(OutboxItem.id))
        ).all()
        return {
            "question": question.model_dump(exclude=skip),
            "clocks": sorted(str(c.model_dump(exclude={"id", "question_id"})) for c in clocks),
            "timeline": [(t.kind, t.at, sorted(t.data)) for t in timeline],
            "outbox": [
                (o.payload["event"], o.payload["question"]["status"], o.payload["data"])
                for o in outbox
            ],
        }


def test_a_reply_is_written_alike_whether_or_not_the_session_holds_the_question(
    live_engine: sa.Engine,
) -> None:
    """A page's reply (`answered.answer`, the one writer of a native reply) changes the
    question, its clocks, timeline and outbox alike when the session has loaded them
    (a batch, a test), and those loaded objects then read what was written."""
    with Session(live_engine) as session:
        pages = [make_page(session, platform=Platform.generic).id for _ in range(2)]
        session.add(WebhookSubscription(url="https://sed.example.ru/hook", events=list(EVENTS)))
        session.commit()
    batch_page, loaded_page = pages
    assert batch_page is not None and loaded_page is not None
    for n, (minutes, from_page) in enumerate(_THREAD):
        with Session(live_engine) as session:
            session.add(_delivery(batch_page, n, minutes, from_page=from_page))
            session.commit()
        now = NOW + timedelta(hours=n)
        assert _drain(live_engine, now) == 1
        with Session(live_engine, expire_on_commit=False) as session:
            event = _delivery(loaded_page, n, minutes, from_page=from_page)
            session.add(event)
            session.flush()
            question = session.exec(
                select(Question).where(col(Question.page_id) == loaded_page)
            ).first()
            clocks = (
                list(session.exec(select(SlaClock).where(SlaClock.question_id == question.id)))
                if question is not None
                else []
            )
            inbox_service.process(session, event, cipher=cipher(), now=now)
            if question is not None:  # the loaded objects read what was written
                stored = (
                    session.connection()
                    .execute(
                        sa.select(Question.status, Question.due_at).where(  # type: ignore[call-overload]
                            col(Question.id) == question.id
                        )
                    )
                    .one()
                )
                assert (question.status, question.due_at) == tuple(stored)
                rows = session.connection().execute(
                    sa.select(SlaClock.id, SlaClock.state).where(  # type: ignore[call-overload]
                        col(SlaClock.question_id) == question.id
                    )
                )
                states = {row.id: row.state for row in rows}
                assert {c.id: c.state for c in clocks} == {c.id: states[c.id] for c in clocks}
            session.commit()
        outcome = _outcome(live_engine, batch_page)
        assert outcome == _outcome(live_engine, loaded_page), f"after event {n}"
    assert outcome["question"]["status"] == "answered"
    assert {k for k, *_ in outcome["timeline"]} >= {"created", "response", "message"}
    assert [e for e, *_ in outcome["outbox"]] == ["question.created"] + ["question.answered"] * 2


def test_the_look_for_pending_work_walks_an_index_during_a_backlog(
    live_engine: sa.Engine, page_id: int
) -> None:
    """PostgreSQL: statistics taken during a backlog say most deliveries are pending; a
    look with LIMIT 1 alone would then be planned as a scan of the table from its start,
    through every delivery already processed. SQLite: an order would sort every pending
    delivery. Neither happens."""
    from app.processing.processor import any_pending, has_pending

    postgres = live_engine.dialect.name == "postgresql"
    with live_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO inbound_event (platform, page_id, delivery_key, body, received_at,"
                " status, attempts, event_types) SELECT 'generic', :page, 'd-' || n, '{}',"
                " CURRENT_TIMESTAMP, 'pending', 0, '' FROM "
                + (
                    "generate_series(1, 3000) AS n"
                    if postgres
                    else "(WITH RECURSIVE s(n) AS"
                    " (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3000) SELECT n FROM s)"
                )
            ),
            {"page": page_id},
        )
        conn.execute(sa.text("ANALYZE inbound_event"))
        query = any_pending(conn.dialect.name)
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        plan = "\n".join(str(row[-1]) for row in conn.execute(sa.text(explain + sql)))
    if postgres:
        assert "ix_inbound_event_pending" in plan, plan
    else:
        assert "TEMP B-TREE" not in plan and "SCAN" not in plan, plan
    assert has_pending(live_engine)
