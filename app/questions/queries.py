"""Reading questions: the queue, filters, cursor pagination, always scoped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth import service as auth_service
from app.auth.models import User
from app.core.db import UTCDateTime
from app.core.errors import Invalid, NotFound
from app.questions.models import OPEN_STATUSES, Question, QuestionStatus

# Sort key of the queue: open questions by their earliest deadline, then the
# ones without a deadline, then closed ones newest first.
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class QuestionFilter:
    institution_id: int | None = None
    page_id: int | None = None
    status: list[str] | None = None
    sla_state: str | None = None
    classification: str | None = None
    q: str | None = None
    assignee_id: int | None = None


def scoped(user: User) -> SelectOfScalar[Question]:
    return select(Question).where(auth_service.scope_filter(user, Question.institution_id))


def get_question(session: Session, user: User, question_id: int) -> Question:
    """A question the user may see; NotFound otherwise (never 403: ids must not leak)."""
    question = session.exec(scoped(user).where(col(Question.id) == question_id)).first()
    if question is None:
        raise NotFound("Вопрос не найден", code="question_not_found")
    return question


def _apply(query: SelectOfScalar[Question], f: QuestionFilter) -> SelectOfScalar[Question]:
    if f.institution_id is not None:
        query = query.where(col(Question.institution_id) == f.institution_id)
    if f.page_id is not None:
        query = query.where(col(Question.page_id) == f.page_id)
    if f.status:
        for status in f.status:
            if status not in QuestionStatus.__members__ and status != "open":
                raise Invalid(f"Неизвестный статус: {status}", code="invalid_status")
        statuses = {s for s in f.status if s != "open"}
        if "open" in f.status:
            statuses |= {str(s) for s in OPEN_STATUSES}
        query = query.where(col(Question.status).in_(statuses))
    if f.classification:
        query = query.where(col(Question.classification) == f.classification)
    if f.assignee_id is not None:
        query = query.where(col(Question.assignee_id) == f.assignee_id)
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(
                col(Question.text).ilike(pattern, escape="\\"),
                col(Question.citizen_name).ilike(pattern, escape="\\"),
            )
        )
    if f.sla_state:
        from app.sla.models import ClockState, SlaClock

        if f.sla_state not in ClockState.__members__:
            raise Invalid(f"Неизвестное состояние срока: {f.sla_state}", code="invalid_sla_state")

        query = query.where(
            sa.exists().where(
                col(SlaClock.question_id) == col(Question.id), col(SlaClock.state) == f.sla_state
            )
        )
    return query


def _rank() -> sa.ColumnElement[int]:
    return sa.case((col(Question.status).in_([str(s) for s in OPEN_STATUSES]), 0), else_=1)


def list_questions(
    session: Session, user: User, f: QuestionFilter, *, after: list[object] | None, limit: int
) -> tuple[Sequence[Question], list[object] | None]:
    """Most urgent first: open before closed, then by due time, then oldest first.

    The cursor is the sort key of the last row, so pages stay stable while rows change.
    """
    rank = _rank()
    due = sa.func.coalesce(col(Question.due_at), sa.literal(_FAR_FUTURE, UTCDateTime()))
    query = _apply(scoped(user), f)
    if after is not None:
        try:
            a_rank, a_due, a_created, a_id = after
            a_due_dt = datetime.fromisoformat(str(a_due))
            a_created_dt = datetime.fromisoformat(str(a_created))
        except (ValueError, TypeError) as exc:
            raise Invalid("Неверный cursor", code="invalid_cursor") from exc
        query = query.where(
            sa.tuple_(rank, due, col(Question.created_at), col(Question.id))
            > sa.tuple_(
                sa.literal(a_rank),
                sa.literal(a_due_dt, UTCDateTime()),
                sa.literal(a_created_dt, UTCDateTime()),
                sa.literal(a_id),
            )
        )
    query = query.order_by(rank, due, col(Question.created_at), col(Question.id)).limit(limit + 1)
    rows = session.exec(query).all()
    next_after: list[object] | None = None
    if len(rows) > limit:
        last = rows[limit - 1]
        last_due = last.due_at or _FAR_FUTURE
        next_after = [
            0 if last.status in OPEN_STATUSES else 1,
            last_due.isoformat(),
            last.created_at.isoformat(),
            last.id,
        ]
    return rows[:limit], next_after
