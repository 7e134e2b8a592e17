"""Edits are held with the batch's rows (`held`): the outcome is the one of processing the
deliveries one at a time, also when an edit meets a reply that settles the same question
or a second edit of the same message in the batch (a row is never updated twice in one
statement: those send the held rows first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.demo import deliveries as d
from app.processing.processor import process_pending
from app.questions.models import Message, Question
from tests.factories.deliveries import store_vk, vk_page
from tests.factories.directory import cipher
from tests.factories.questions import timeline_kinds
from webhooks import PageSecrets

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _process(engine: sa.Engine, page_id: int, page: PageSecrets, bodies: list[Any]) -> None:
    store_vk(engine, page_id, page, bodies)
    while process_pending(engine, cipher(), lambda: datetime.now(UTC)):
        pass


def _later(page: PageSecrets) -> list[Any]:
    """The second batch, in the platform's order."""
    at = START + timedelta(minutes=30)
    minute = timedelta(minutes=1)
    return [
        # An edit of a stored question's first message: nothing held meets it.
        d.vk_comment(page, "300000002", 8, 102, "Когда уберут снег? (уточнение)", at,
                     kind="wall_reply_edit"),
        # The community answers the first question, and its author then edits it twice.
        d.vk_page_comment(page, "300000001", 7, 104, 101, "Отремонтируем в мае.", at + minute),
        d.vk_comment(page, "300000001", 7, 101, "Когда починят дорогу? (исправлено)",
                     at + 2 * minute, kind="wall_reply_edit"),
        d.vk_comment(page, "300000001", 7, 101, "Когда починят дорогу на Ленина?",
                     at + 3 * minute, kind="wall_reply_edit"),
        # A new question of this batch, edited in it.
        d.vk_comment(page, "300000003", 9, 103, "Где записаться в кружок?", at + 4 * minute),
        d.vk_comment(page, "300000003", 9, 103, "Где записаться в кружок рисования?",
                     at + 5 * minute, kind="wall_reply_edit"),
    ]  # fmt: skip


def _outcome(engine: sa.Engine, page_id: int) -> list[Any]:
    with Session(engine) as session:
        out: list[Any] = []
        questions = select(Question).where(col(Question.page_id) == page_id)
        for q in session.exec(questions.order_by(col(Question.id))):
            messages = session.exec(
                select(Message.external_id, Message.text, Message.previous_texts)
                .where(col(Message.question_id) == q.id)
                .order_by(col(Message.id))
            ).all()
            kinds = timeline_kinds(session, q.id)
            out.append(
                (
                    q.citizen_platform_id,
                    q.text,
                    str(q.status),
                    [
                        ((m[0] or "").rsplit(":", 1)[-1], m[1], [p["text"] for p in m[2] or []])
                        for m in messages
                    ],
                    [k for k in kinds if k in ("created", "edited", "response")],
                )
            )
        return out


def test_edits_held_with_the_batch_end_as_one_event_at_a_time(live_engine: sa.Engine) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    outcomes = []
    for alone in (False, True):
        page_id, page = vk_page(live_engine)
        _process(
            live_engine,
            page_id,
            page,
            [
                d.vk_comment(page, "300000001", 7, 101, "Когда починят дорогу?", START),
                d.vk_comment(page, "300000002", 8, 102, "Когда уберут снег?", START),
            ],
        )
        statements.clear()
        sa.event.listen(live_engine, "before_cursor_execute", seen)
        try:
            for bodies in [[b] for b in _later(page)] if alone else [_later(page)]:
                _process(live_engine, page_id, page, bodies)
        finally:
            sa.event.remove(live_engine, "before_cursor_execute", seen)
        if not alone and live_engine.dialect.name == "postgresql":
            # The held rows went before the second question's edit (the reply settles that
            # question), before its second edit and before the new question's edit, and
            # at the end: the first edit was held, and no edit was a statement of its own.
            assert len([s for s in statements if s.startswith("WITH w0 AS (")]) == 4
        outcomes.append(_outcome(live_engine, page_id))

    together, alone_outcome = outcomes
    assert alone_outcome == [
        (
            "300000001",
            "Когда починят дорогу на Ленина?",
            "answered",
            [
                (
                    "101",
                    "Когда починят дорогу на Ленина?",
                    ["Когда починят дорогу?", "Когда починят дорогу? (исправлено)"],
                ),
                ("104", "Отремонтируем в мае.", []),
            ],
            ["created", "edited", "edited", "response"],
        ),
        (
            "300000002",
            "Когда уберут снег? (уточнение)",
            "new",
            [("102", "Когда уберут снег? (уточнение)", ["Когда уберут снег?"])],
            ["created", "edited"],
        ),
        (
            "300000003",
            "Где записаться в кружок рисования?",
            "new",
            [("103", "Где записаться в кружок рисования?", ["Где записаться в кружок?"])],
            ["created", "edited"],
        ),
    ]
    assert together == alone_outcome
