"""Transfers, dismissals and reclassification take the question's row lock first, as the
other actions do: a colleague's change made meanwhile is seen, not written over.

The stale-copy tests run on both databases; the concurrent ones need PostgreSQL's row
locks and wait for the second transaction to block on the lock (read from
pg_stat_activity) instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as answering
from app.answering.models import StatusChange
from app.auth.models import Role, User
from app.core.errors import Conflict
from app.directory.models import Institution
from app.questions.models import Question, QuestionStatus, TimelineEntry
from app.routing import service
from tests.factories.auth import make_user
from tests.factories.directory import make_institution
from tests.factories.questions import make_question

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


def _world(db: Session) -> tuple[Question, Institution, Institution, User, User]:
    school = make_institution(db, name="Школа №1")
    roads = make_institution(db, name="Управление дорог")
    parks = make_institution(db, name="Управление парков")
    question = make_question(db, institution_id=school.id)
    first = make_user(db, Role.operator, institution_ids=[school.id], password=None)
    second = make_user(db, Role.operator, institution_ids=[school.id], password=None)
    db.commit()
    return question, roads, parks, first, second


def _timeline(db: Session, question_id: int | None) -> list[TimelineEntry]:
    db.expire_all()
    return list(
        db.exec(
            select(TimelineEntry)
            .where(
                TimelineEntry.question_id == question_id,
                col(TimelineEntry.kind).in_(["transferred", "dismissed", "status_changed"]),
            )
            .order_by(col(TimelineEntry.id))
        ).all()
    )


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


def _race(
    engine: sa.Engine,
    question_id: int | None,
    first: Callable[[Session, Question], object],
    second: Callable[[Session, Question], object],
) -> dict[str, object]:
    """`first` acts and holds the row; `second`, on a copy read before, acts meanwhile
    in another thread and must wait for `first` to commit. Returns how `second` ended."""
    outcome: dict[str, object] = {}
    with Session(engine) as a, Session(engine) as b:
        mine, theirs = a.get(Question, question_id), b.get(Question, question_id)
        assert mine is not None and theirs is not None
        assert mine.status == theirs.status == QuestionStatus.new  # both see it open
        first(a, mine)
        a.flush()  # a holds the row

        def act() -> None:
            try:
                second(b, theirs)
                b.commit()
                outcome["done"] = True
            except Conflict as exc:
                b.rollback()
                outcome["refused"] = exc.code

        thread = threading.Thread(target=act)
        thread.start()
        _wait_for_a_lock_wait(engine)
        a.commit()
        thread.join(20)
        assert not thread.is_alive()
    return outcome


def _kept(db: Session, question_id: int | None) -> Question:
    db.expire_all()
    kept = db.get(Question, question_id)
    assert kept is not None
    return kept


def test_a_stale_copy_cannot_transfer_a_question_a_colleague_dismissed(
    live_engine: sa.Engine, db: Session
) -> None:
    question, roads, _, first, second = _world(db)
    school_id = question.institution_id
    with (
        Session(live_engine, expire_on_commit=False) as a,
        Session(live_engine, expire_on_commit=False) as b,
    ):
        mine = a.get(Question, question.id)
        a.commit()
        theirs = b.get(Question, question.id)
        b.commit()  # b read it open; its copy stays in memory, stale
        assert mine is not None and theirs is not None
        service.dismiss(a, mine, reason="spam", note=None, by=first, now=NOW)
        a.commit()
        with pytest.raises(Conflict) as refused:
            service.transfer(
                b, theirs, institution_id=roads.id or 0, reason="Дороги", by=second, now=LATER
            )
        assert refused.value.code == "question_closed"
        b.rollback()
    kept = _kept(db, question.id)
    assert (kept.status, kept.institution_id) == (QuestionStatus.dismissed, school_id)
    assert [e.kind for e in _timeline(db, question.id)] == ["dismissed"]


def test_a_stale_copy_transfers_from_where_a_colleague_moved_the_question(
    live_engine: sa.Engine, db: Session
) -> None:
    question, roads, parks, first, second = _world(db)
    school_id = question.institution_id
    with (
        Session(live_engine, expire_on_commit=False) as a,
        Session(live_engine, expire_on_commit=False) as b,
    ):
        mine = a.get(Question, question.id)
        a.commit()
        theirs = b.get(Question, question.id)
        b.commit()
        assert mine is not None and theirs is not None
        service.transfer(a, mine, institution_id=roads.id or 0, reason="Дороги", by=first, now=NOW)
        a.commit()
        service.transfer(
            b, theirs, institution_id=parks.id or 0, reason="Парки", by=second, now=LATER
        )
        b.commit()
    moves = [
        (e.data["from_institution_id"], e.data["to_institution_id"])
        for e in _timeline(db, question.id)
    ]
    assert moves == [(school_id, roads.id), (roads.id, parks.id)]


@pytest.mark.postgres
def test_a_transfer_waits_for_a_dismissal_at_the_same_moment_and_is_refused(
    live_engine: sa.Engine, db: Session
) -> None:
    question, roads, _, first, second = _world(db)
    school_id = question.institution_id
    outcome = _race(
        live_engine,
        question.id,
        lambda s, q: service.dismiss(s, q, reason="gratitude", note=None, by=first, now=NOW),
        lambda s, q: service.transfer(
            s, q, institution_id=roads.id or 0, reason="Дороги", by=second, now=LATER
        ),
    )
    assert outcome == {"refused": "question_closed"}
    kept = _kept(db, question.id)
    assert (kept.status, kept.institution_id) == (QuestionStatus.dismissed, school_id)
    assert kept.dismiss_reason == "gratitude"
    assert [e.kind for e in _timeline(db, question.id)] == ["dismissed"]


@pytest.mark.postgres
def test_a_dismissal_waits_for_a_transfer_at_the_same_moment_and_follows_it(
    live_engine: sa.Engine, db: Session
) -> None:
    question, roads, _, first, second = _world(db)
    outcome = _race(
        live_engine,
        question.id,
        lambda s, q: service.transfer(
            s, q, institution_id=roads.id or 0, reason="Дороги", by=first, now=NOW
        ),
        lambda s, q: service.dismiss(s, q, reason="spam", note=None, by=second, now=LATER),
    )
    assert outcome == {"done": True}
    kept = _kept(db, question.id)
    assert (kept.status, kept.institution_id) == (QuestionStatus.dismissed, roads.id)
    assert [e.kind for e in _timeline(db, question.id)] == ["transferred", "dismissed"]


@pytest.mark.postgres
def test_two_transfers_at_once_chain_in_the_timeline(live_engine: sa.Engine, db: Session) -> None:
    question, roads, parks, first, second = _world(db)
    school_id = question.institution_id
    outcome = _race(
        live_engine,
        question.id,
        lambda s, q: service.transfer(
            s, q, institution_id=roads.id or 0, reason="Дороги", by=first, now=NOW
        ),
        lambda s, q: service.transfer(
            s, q, institution_id=parks.id or 0, reason="Парки", by=second, now=LATER
        ),
    )
    assert outcome == {"done": True}
    entries = _timeline(db, question.id)
    moves = [(e.data["from_institution_id"], e.data["to_institution_id"]) for e in entries]
    assert moves == [(school_id, roads.id), (roads.id, parks.id)]
    # The second queue held it from the first transfer, not from the question's arrival.
    assert entries[1].data["held_since"] == NOW.isoformat()
    kept = _kept(db, question.id)
    assert kept.institution_id == parks.id


@pytest.mark.postgres
def test_closing_waits_for_a_transfer_and_a_transfer_waits_for_closing(
    live_engine: sa.Engine, db: Session
) -> None:
    question, roads, _, first, second = _world(db)
    outcome = _race(
        live_engine,
        question.id,
        lambda s, q: answering.set_status(s, q, StatusChange.closed, by=first, now=NOW),
        lambda s, q: service.transfer(
            s, q, institution_id=roads.id or 0, reason="Дороги", by=second, now=LATER
        ),
    )
    assert outcome == {"refused": "question_closed"}
    kept = _kept(db, question.id)
    assert kept.status == QuestionStatus.closed
    assert kept.institution_id == question.institution_id
    assert "transferred" not in [e.kind for e in _timeline(db, question.id)]
