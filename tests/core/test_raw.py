"""`raw.Read`: the same row as SQLAlchemy gives, by psycopg's cursor on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import raw
from app.questions.models import Question, QuestionStatus
from tests.factories.directory import make_page

_LATEST = (
    select(Question.id, Question.text, Question.created_at)
    .where(
        col(Question.page_id) == sa.bindparam("page_id"),
        # A value bound in the statement itself, an enum: sent as its text.
        col(Question.status) == QuestionStatus.new,
        col(Question.created_at) >= sa.bindparam("since"),
    )
    .order_by(col(Question.id).desc())
    .limit(1)
)
_COUNT = sa.text("SELECT count(*), max(id) FROM question WHERE page_id = :page_id")


def test_a_read_gives_what_sqlalchemy_gives(session: Session) -> None:
    page = make_page(session)
    for n in range(3):
        session.add(
            Question(
                page_id=page.id,
                institution_id=page.institution_id,
                platform="vk",
                kind="comment",
                status=QuestionStatus.new if n < 2 else QuestionStatus.answered,
                citizen_platform_id=str(n),
                thread_key=f"t{n}",
                text=f"Вопрос {n}",
                created_at=datetime(2026, 3, 1 + n, tzinfo=UTC),
            )
        )
    session.flush()
    db = session.connection()
    params = {"page_id": page.id, "since": datetime(2026, 2, 1, tzinfo=UTC)}
    expected = tuple(db.execute(_LATEST, params).one())
    assert raw.Read(_LATEST).one(db, params) == expected
    assert expected[1] == "Вопрос 1"
    count, newest = raw.Read(_COUNT).one(db, {"page_id": page.id})
    assert (count, newest) == (3, max(db.execute(sa.select(Question.id)).scalars()))
    with pytest.raises(sa.exc.NoResultFound):
        raw.Read(_LATEST).one(db, {"page_id": page.id, "since": datetime(2027, 1, 1, tzinfo=UTC)})
