"""A batch holds its events' rows back and writes them in one statement (`held.holding`;
on SQLite one executemany a table). Whatever the events of one batch read of each
other (a native reply to a question of the same batch, the citizen's follow-up after
that reply, another citizen in the same thread, the same citizen in another thread),
the outcome is the one of processing them one at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.models import Platform
from app.intake.models import InboundEvent
from app.processing import processor
from app.processing.processor import process_pending
from app.questions.models import Direction, Message, MessageSource, Question
from app.sla.models import SlaClock
from tests.factories.directory import cipher, make_page
from tests.factories.questions import timeline_kinds

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def _scenario() -> list[dict[str, Any]]:
    """Deliveries in arrival order: (id, thread, author or None for the page, reply_to,
    minutes before NOW). The first question is overdue when it arrives."""
    rows = [
        ("m1", "t1", "c1", None, 3000),
        ("m2", "t1", "c2", None, 2990),
        ("r1", "t1", None, "m1", 2980),
        ("m3", "t1", "c1", None, 2970),  # c1's follow-up after the answer
        ("r6", "t1", None, "m3", 2965),  # the page answers the follow-up
        ("m4", "t2", "c1", None, 2960),  # c1 again, in another thread
        ("m5", "t3", "c3", None, 30),
        ("r2", "t3", None, None, 20),  # no reply_to: answers the thread's open question
        ("r3", "t1", None, "m2", 10),
        ("m6", "t1", "c2", None, 5),  # c2's follow-up after the answer
        ("m7", "t4", "c4", None, 40),
        ("r4", "t4", None, "m7", 35),  # two replies to a question of the same batch:
        ("r5", "t4", None, "m7", 34),  # the second finds it answered by the first
    ]
    out = []
    for key, thread, author, reply_to, minutes in rows:
        body: dict[str, Any] = {
            "id": key,
            "thread_id": thread,
            "kind": "comment",
            "author": {"id": author or "page", "name": "Страница" if author is None else author},
            "text": f"Когда починят дорогу на улице Ленина? ({key})",
            "sent_at": (NOW - timedelta(minutes=minutes)).isoformat(),
            "from_page": author is None,
        }
        if reply_to is not None:
            body["reply_to"] = reply_to
        out.append(body)
    return out


def _store(engine: sa.Engine, page_id: int) -> None:
    with Session(engine) as session:
        for body in _scenario():
            session.add(
                InboundEvent(
                    platform="generic",
                    page_id=page_id,
                    delivery_key=body["id"],
                    body=json.dumps(body).encode(),
                    received_at=NOW,
                )
            )
        session.commit()


def _outcome(engine: sa.Engine, page_id: int) -> list[Any]:
    """The page's questions with their messages, clocks and timeline, by platform keys."""
    with Session(engine) as session:
        out: list[Any] = []
        questions = session.exec(
            select(Question).where(col(Question.page_id) == page_id).order_by(col(Question.id))
        ).all()
        for q in questions:
            messages = session.exec(
                select(Message.external_id, Message.source)
                .where(col(Message.question_id) == q.id)
                .order_by(col(Message.id))
            ).all()
            clocks = session.exec(
                select(SlaClock.target, SlaClock.state, SlaClock.due_at, SlaClock.done_at)
                .where(col(SlaClock.question_id) == q.id)
                .order_by(col(SlaClock.target))
            ).all()
            kinds = timeline_kinds(session, q.id)
            out.append(
                (
                    q.thread_key,
                    q.citizen_platform_id,
                    str(q.status),
                    q.first_response_at,
                    q.due_at,
                    q.linked_question_id is not None,
                    [tuple(m) for m in messages],
                    [tuple(c) for c in clocks],
                    list(kinds),
                )
            )
        return out


def _page(engine: sa.Engine) -> int:
    with Session(engine) as session:
        page = make_page(session, platform=Platform.generic)
        session.commit()
        assert page.id is not None
        return page.id


def test_a_batch_with_held_rows_ends_as_one_event_at_a_time(
    live_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite: one transaction for the batch, however slow the machine (past its budget a
    # batch commits what it holds and goes on in a new transaction).
    monkeypatch.setattr(processor, "SQLITE_BUDGET", 60.0)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    together, alone = _page(live_engine), _page(live_engine)
    _store(live_engine, together)
    sa.event.listen(live_engine, "before_cursor_execute", seen)
    try:
        assert process_pending(live_engine, cipher(), lambda: NOW) == len(_scenario())
    finally:
        sa.event.remove(live_engine, "before_cursor_execute", seen)
    if live_engine.dialect.name == "postgresql":
        combined = [s for s in statements if s.startswith("WITH w0 AS (INSERT")]
        # Five new questions and three replies in fewer statements: rows were held.
        assert 0 < len(combined) < 8
    else:
        # SQLite: the thirteen messages in fewer INSERTs (an executemany each), with the
        # ids the batch took for them.
        unquoted = [s.replace('"', "") for s in statements]
        inserts = [s for s in unquoted if s.startswith("INSERT INTO message")]
        assert 0 < len(inserts) < 8
        assert all(s.startswith("INSERT INTO message (id,") for s in inserts)

    _store(live_engine, alone)
    while process_pending(live_engine, cipher(), lambda: NOW, limit=1):
        pass

    expected = _outcome(live_engine, alone)
    # m1, m2, m4, m5, m7 (m3 and m6 join the questions of m1 and m2).
    assert [(q[0], q[1], q[2]) for q in expected] == [
        ("t1", "c1", "answered"),
        ("t1", "c2", "in_progress"),
        ("t2", "c1", "new"),
        ("t3", "c3", "answered"),
        ("t4", "c4", "answered"),
    ]
    assert expected[4][3] == NOW - timedelta(minutes=35)  # the first reply's time
    assert _outcome(live_engine, together) == expected


def _deliver(engine: sa.Engine, page_id: int, rows: list[tuple[Any, ...]]) -> None:
    """Store deliveries (key, thread, author or None for the page, reply_to, minutes
    before NOW, text) and process them."""
    with Session(engine) as session:
        for key, thread, author, reply_to, minutes, text in rows:
            body: dict[str, Any] = {
                "id": key,
                "thread_id": thread,
                "kind": "comment",
                "author": {"id": author or "page", "name": author or "Страница"},
                "text": text,
                "sent_at": (NOW - timedelta(minutes=minutes)).isoformat(),
                "from_page": author is None,
            }
            if reply_to is not None:
                body["reply_to"] = reply_to
            session.add(
                InboundEvent(
                    platform="generic",
                    page_id=page_id,
                    delivery_key=f"{page_id}:{key}",
                    body=json.dumps(body).encode(),
                    received_at=NOW,
                )
            )
        session.commit()
    while process_pending(engine, cipher(), lambda: NOW):
        pass


def test_a_page_reply_with_the_text_of_our_unrecorded_reply_is_that_reply(
    live_engine: sa.Engine,
) -> None:
    """The platform delivers our own reply before the outbox has recorded it: with the
    message it answers, or with none (the thread's open question). It claims our reply's
    key and is not counted as a second, native response."""
    page_id = _page(live_engine)
    asked = "Когда починят дорогу на улице Ленина?"
    _deliver(live_engine, page_id, [("m1", "t1", "c1", None, 60, asked)])
    _deliver(live_engine, page_id, [("m2", "t2", "c2", None, 50, asked)])
    answer = "Здравствуйте! Ремонт в плане на май."
    with Session(live_engine) as session:
        # An operator's replies, queued: the outbox has not recorded them as published.
        # In the questions' order, so that the messages' ids follow t1, t2: unordered,
        # PostgreSQL returned them in heap order, where an updated row moves to the end.
        questions = select(Question).where(col(Question.page_id) == page_id)
        for question in session.exec(questions.order_by(col(Question.id))):
            assert question.id is not None
            session.add(
                Message(
                    question_id=question.id,
                    page_id=page_id,
                    direction=Direction.outbound,
                    source=MessageSource.otklik,
                    text=answer,
                )
            )
        session.commit()
    _deliver(
        live_engine,
        page_id,
        [("r1", "t1", None, "m1", 5, answer), ("r2", "t2", None, None, 4, answer)],
    )
    with Session(live_engine) as session:
        messages = session.exec(
            select(Message.external_id, Message.source)
            .where(col(Message.page_id) == page_id, col(Message.source) != "citizen")
            .order_by(col(Message.id))
        ).all()
        assert [tuple(m) for m in messages] == [("r1", "otklik"), ("r2", "otklik")]


def test_ids_taken_before_a_flush_are_not_given_again_after_it(live_engine: sa.Engine) -> None:
    """Two page replies to a question already stored: the second takes its message's id,
    then sends the first's held writes (they settle the same question) before holding
    its own. A new question after them must not be given that id again: the batch would
    fail at its end and be done again one event at a time."""
    page_id = _page(live_engine)
    asked = "Когда починят дорогу на улице Ленина?"
    _deliver(live_engine, page_id, [("m1", "t1", "c1", None, 60, asked)])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(live_engine, "before_cursor_execute", seen)
    try:
        _deliver(
            live_engine,
            page_id,
            [
                ("r1", "t1", None, "m1", 30, "Ремонт в мае."),
                ("r2", "t1", None, "m1", 29, "Уточним сроки."),
                ("m2", "t2", "c2", None, 20, asked),
            ],
        )
    finally:
        sa.event.remove(live_engine, "before_cursor_execute", seen)
    with Session(live_engine) as session:
        keys = session.exec(
            select(Message.external_id)
            .where(col(Message.page_id) == page_id)
            .order_by(col(Message.id))
        ).all()
    assert list(keys) == ["m1", "r1", "r2", "m2"]
    if live_engine.dialect.name == "sqlite":  # PostgreSQL's ids come from its sequences
        # Held and written as held: no INSERT of a message without its id (the batch was
        # not done again one event at a time).
        unquoted = [s.replace('"', "") for s in statements]
        inserts = [s for s in unquoted if s.startswith("INSERT INTO message")]
        assert inserts and all(s.startswith("INSERT INTO message (id,") for s in inserts)


def test_a_reply_naming_no_message_skips_the_question_a_held_reply_answered(
    live_engine: sa.Engine,
) -> None:
    """Two citizens' questions stored in one thread; then, in one batch, the page answers
    the newer by name and twice more naming no message. The second reply answers the
    older question (the newer one is answered by the first, still held), the third
    finds nothing open. As one event at a time, and without sending the held rows
    before each reply."""
    asked = "Когда починят дорогу на улице Ленина?"
    replies = [
        ("r1", "t1", None, "m2", 30, "Ремонт в мае."),
        ("r2", "t1", None, None, 29, "И вам ответим: в мае."),
        ("r3", "t1", None, None, 28, "Спасибо за вопросы."),
    ]
    outcomes = []
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for alone in (False, True):
        page_id = _page(live_engine)
        _deliver(
            live_engine,
            page_id,
            [("m1", "t1", "c1", None, 60, asked), ("m2", "t1", "c2", None, 50, asked)],
        )
        statements.clear()
        sa.event.listen(live_engine, "before_cursor_execute", seen)
        try:
            for row in [[r] for r in replies] if alone else [replies]:
                _deliver(live_engine, page_id, row)
        finally:
            sa.event.remove(live_engine, "before_cursor_execute", seen)
        if not alone and live_engine.dialect.name == "postgresql":
            held = [s for s in statements if s.startswith("WITH w0 AS (")]
            assert len(held) == 1  # the batch's rows in its one statement at the end
        outcomes.append(_outcome(live_engine, page_id))
    together, alone_outcome = outcomes
    assert [(q[1], q[2], q[6]) for q in alone_outcome] == [
        ("c1", "answered", [("m1", "citizen"), ("r2", "native")]),
        ("c2", "answered", [("m2", "citizen"), ("r1", "native")]),
    ]
    assert together == alone_outcome


def test_a_follow_up_after_two_replies_to_its_question_sees_them_both(
    live_engine: sa.Engine,
) -> None:
    """The second reply to a stored question sends the batch's held rows first (the
    first reply's settling of it): its own marks must outlive that send, so that the
    citizen's follow-up after it sends its settling first too and reopens the question."""
    asked = "Когда починят дорогу на улице Ленина?"
    batch = [
        ("r1", "t1", None, "m1", 30, "Ремонт в мае."),
        ("r2", "t1", None, "m1", 29, "Уточним сроки."),
        ("m2", "t1", "c1", None, 20, "А раньше никак?"),
    ]
    outcomes = []
    for alone in (False, True):
        page_id = _page(live_engine)
        _deliver(live_engine, page_id, [("m1", "t1", "c1", None, 60, asked)])
        for rows in [[r] for r in batch] if alone else [batch]:
            _deliver(live_engine, page_id, rows)
        outcomes.append(_outcome(live_engine, page_id))
    together, alone_outcome = outcomes
    assert [(q[1], q[2]) for q in alone_outcome] == [("c1", "in_progress")]
    assert together == alone_outcome
