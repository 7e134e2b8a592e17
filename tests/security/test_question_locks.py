"""The question row is changed under a lock: two operators taking a question, or an
operator's status change racing processing, run one after the other.

The sequential tests run on both databases (a stale copy of the question must not
win); the concurrent ones need PostgreSQL's row locks, and wait for the second
transaction to block on the lock (read from pg_stat_activity) rather than sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.answering import service
from app.answering.models import StatusChange
from app.auth.models import Role, User
from app.core.errors import Conflict
from app.directory.models import Page, Platform
from app.questions.models import Message, Question, QuestionStatus
from app.sla.models import ClockState, SlaClock
from tests.factories.auth import make_user
from tests.factories.directory import make_page
from tests.factories.questions import make_question
from tests.live import settle

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RUNNING = (ClockState.running, ClockState.warning, ClockState.breached)


def _operators(db: Session, question: Question) -> tuple[User, User]:
    first = make_user(db, Role.operator, institution_id=question.institution_id, password=None)
    second = make_user(db, Role.operator, institution_id=question.institution_id, password=None)
    db.commit()
    return first, second


def _question(db: Session) -> Question:
    question = make_question(db)
    db.commit()
    return question


def _wait_for_a_lock_wait(engine: sa.Engine) -> None:
    """Until some backend of this database waits on a lock (the second transaction)."""
    deadline = time.monotonic() + 20
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.01)
    raise AssertionError("the second transaction never waited for the lock")


def test_a_stale_copy_cannot_take_a_question_a_colleague_took(
    live_engine: sa.Engine, db: Session
) -> None:
    question = _question(db)
    first, second = _operators(db, question)
    with (
        Session(live_engine, expire_on_commit=False) as a,
        Session(live_engine, expire_on_commit=False) as b,
    ):
        mine = a.get(Question, question.id)
        a.commit()
        theirs = b.get(Question, question.id)
        b.commit()  # b read it free; its copy stays in memory, stale
        assert mine is not None and theirs is not None
        service.claim(a, mine, by=first, now=NOW)
        a.commit()
        with pytest.raises(Conflict) as refused:
            service.claim(b, theirs, by=second, now=NOW)
        assert refused.value.status_code == 409
    db.expire_all()
    taken = db.get(Question, question.id)
    assert taken is not None and taken.assignee_id == first.id


@pytest.mark.postgres
def test_two_operators_take_a_question_at_once_exactly_one_wins(
    live_engine: sa.Engine, db: Session
) -> None:
    question = _question(db)
    first, second = _operators(db, question)
    outcome: dict[str, object] = {}
    with Session(live_engine) as a, Session(live_engine) as b:
        mine, theirs = a.get(Question, question.id), b.get(Question, question.id)
        assert mine is not None and theirs is not None
        assert mine.assignee_id is None and theirs.assignee_id is None  # both see it free
        service.claim(a, mine, by=first, now=NOW)
        a.flush()  # a holds the row

        def take() -> None:
            try:
                service.claim(b, theirs, by=second, now=NOW)
                b.commit()
                outcome["taken"] = True
            except Conflict as exc:
                b.rollback()
                outcome["refused"] = exc.status_code

        thread = threading.Thread(target=take)
        thread.start()
        _wait_for_a_lock_wait(live_engine)
        a.commit()
        thread.join(20)
    assert outcome == {"refused": 409}
    db.expire_all()
    taken = db.get(Question, question.id)
    assert taken is not None and taken.assignee_id == first.id


def _comment(payload: Callable[[str, str], bytes], comment_id: int) -> bytes:
    data = json.loads(payload("vk", "wall_reply_new"))
    data["event_id"] = f"{comment_id:040x}"
    data["object"]["id"] = comment_id
    data["object"]["text"] = f"Когда починят фонарь у дома {comment_id} на улице Садовой?"
    return json.dumps(data).encode()


@pytest.mark.postgres
def test_closing_while_a_follow_up_is_processed_leaves_no_open_question_stopped(
    live: TestClient,
    live_app: FastAPI,
    live_engine: sa.Engine,
    db: Session,
    payload: Callable[[str, str], bytes],
) -> None:
    page: Page = make_page(db, platform=Platform.vk, external_id="218734591")
    db.commit()
    assert live.post(f"/webhooks/vk/{page.key}", content=_comment(payload, 9187)).text == "ok"
    settle(live_app)
    [question] = db.exec(select(Question)).all()
    operator = make_user(db, Role.operator, institution_id=question.institution_id, password=None)
    db.commit()
    with Session(live_engine) as a:
        mine = a.get(Question, question.id)
        assert mine is not None
        service.set_status(a, mine, StatusChange.closed, by=operator, now=NOW)
        a.flush()  # the operator's transaction holds the row
        # The citizen writes again in the same thread while the operator's close is open.
        answer = live.post(f"/webhooks/vk/{page.key}", content=_comment(payload, 9188))
        assert answer.text == "ok"
        _wait_for_a_lock_wait(live_engine)
        a.commit()
    settle(live_app)
    db.commit()
    db.expire_all()
    questions = db.exec(select(Question).order_by(col(Question.id))).all()
    for q in questions:
        clocks = db.exec(select(SlaClock).where(SlaClock.question_id == q.id)).all()
        if q.status in (QuestionStatus.closed, QuestionStatus.dismissed):
            # Stopped: nothing runs or is watched (a breach before the close stays a breach:
            # the question arrived overdue).
            watched = [c for c in clocks if c.state in RUNNING[:2] or c.check_at is not None]
            assert not watched, (q.status, [(c.target, c.state) for c in clocks])
        else:
            running = [c for c in clocks if c.state in RUNNING]
            assert running, (q.status, [(c.target, c.state) for c in clocks])
    closed, follow_up = questions
    assert closed.status == QuestionStatus.closed
    assert follow_up.status == QuestionStatus.new
    [message] = db.exec(select(Message).where(Message.question_id == follow_up.id)).all()
    assert message.text == "Когда починят фонарь у дома 9188 на улице Садовой?"


@pytest.mark.postgres
def test_a_reply_published_while_the_operator_closes_does_not_reopen_the_question(
    live_engine: sa.Engine, db: Session, settings: object
) -> None:
    import httpx

    from app.core.config import Settings
    from app.jobs.context import JobContext
    from app.outbox import sender
    from app.outbox.outcomes import Claimed
    from app.questions.models import OutboxItem, OutboxKind
    from tests.factories.directory import cipher
    from webhooks.base import Published

    assert isinstance(settings, Settings)
    question = make_question(
        db, reply_ref={"method": "wall", "owner_id": "-1", "post_id": "2", "comment_id": "3"}
    )
    operator = make_user(db, Role.operator, institution_id=question.institution_id, password=None)
    db.commit()
    item = service.reply(
        db,
        question,
        text="Ремонт в плане на май.",
        interim=False,
        expected_at=None,
        by=operator,
        now=NOW,
        cipher=cipher(),
    )
    db.commit()
    assert isinstance(item, OutboxItem) and item.id is not None
    ctx = JobContext(
        engine=live_engine,
        settings=settings,
        clock=lambda: NOW,
        http=httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(500))),
        cipher=cipher(),
    )
    claimed = Claimed(id=item.id, kind=OutboxKind.reply, attempts=1, stuck=False)
    published = Published(external_id="3_1", source_key="wall:-1_2:31", sent_at=NOW)
    failed: list[BaseException] = []

    def record() -> None:
        try:
            sender._record_published(ctx, claimed, published)
        except BaseException as exc:  # reported below, not lost in the thread
            failed.append(exc)

    with Session(live_engine) as a:
        mine = a.get(Question, question.id)
        assert mine is not None
        service.set_status(a, mine, StatusChange.closed, by=operator, now=NOW)
        a.flush()  # the operator's transaction holds the row
        thread = threading.Thread(target=record)
        thread.start()
        _wait_for_a_lock_wait(live_engine)
        a.commit()
        thread.join(20)
    assert not failed, failed
    db.expire_all()
    kept = db.get(Question, question.id)
    assert kept is not None
    # Published (the reply is sent and counted) but the operator's close stands.
    assert kept.status == QuestionStatus.closed
    assert kept.first_response_at == NOW
