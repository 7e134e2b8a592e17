"""Reading questions: the queue, filters, cursor pagination, always scoped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth import service as auth_service
from app.auth.models import User
from app.core.db import UTCDateTime
from app.core.errors import Invalid, NotFound
from app.questions.models import OPEN_STATUSES, Question, QuestionStatus
from app.routing.triage import NO_ANSWER

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
    # The queue's filters beyond the API's.
    platform: str | None = None
    category_id: int | None = None
    unassigned: bool = False
    # True: only what needs an answer; False: only what needs none (triage's NO_ANSWER).
    needs_answer: bool | None = None
    # Overdue: an active deadline (`Question.due_at`) at or before this instant.
    due_by: datetime | None = None
    # The reports' drill-down (`_apply_drill`): subtrees, a sector, received and
    # answered periods, the first response's outcome, who answered.
    territory_id: int | None = None
    institution_tree_id: int | None = None
    sector: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    answered_from: datetime | None = None
    answered_to: datetime | None = None
    first_response: str | None = None  # met, late
    breached: bool | None = None
    warning_at: datetime | None = None
    source: str | None = None  # answered at all (any), with an Otklik reply, only natively


def scoped(user: User) -> SelectOfScalar[Question]:
    return select(Question).where(auth_service.scope_filter(user, Question.institution_id))


def _scoped_ids(user: User) -> sa.Select[Any]:
    return sa.select(col(Question.id)).where(
        auth_service.scope_filter(user, Question.institution_id)
    )


def _load_in_order(session: Session, ids_query: sa.Select[Any]) -> list[Question]:
    """Sort on the ids (from the queue's covering index), then load only the rows shown:
    sorting thousands of whole rows, texts included, cost more than the rest of /inbox."""
    return load_in_order(session, list(session.execute(ids_query).scalars()))


def load_in_order(session: Session, ids: Sequence[int], user: User | None = None) -> list[Question]:
    """These questions, in this order; an id no longer there, or no longer in the user's
    scope when one is given, is left out."""
    if not ids:
        return []
    query = select(Question).where(col(Question.id).in_(ids))
    if user is not None:
        query = query.where(auth_service.scope_filter(user, Question.institution_id))
    found = {q.id: q for q in session.exec(query)}
    return [found[i] for i in ids if i in found]


def get_question(session: Session, user: User, question_id: int) -> Question:
    """A question the user may see; NotFound otherwise (never 403: ids must not leak)."""
    question = session.exec(scoped(user).where(col(Question.id) == question_id)).first()
    if question is None:
        raise NotFound("Вопрос не найден", code="question_not_found")
    return question


_Q = TypeVar("_Q", bound=sa.Select[*tuple[Any, ...]])


def apply_filter(query: _Q, f: QuestionFilter) -> _Q:
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
    if f.unassigned:
        query = query.where(col(Question.assignee_id).is_(None))
    if f.platform:
        query = query.where(col(Question.platform) == f.platform)
    if f.category_id is not None:
        query = query.where(col(Question.category_id) == f.category_id)
    if f.needs_answer is not None:
        no_answer = col(Question.classification).in_([str(c) for c in NO_ANSWER])
        query = query.where(sa.not_(no_answer) if f.needs_answer else no_answer)
    if f.due_by is not None:
        query = query.where(col(Question.due_at) <= f.due_by)
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
    return _apply_drill(query, f)


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
    query = apply_filter(_scoped_ids(user), f)
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
    rows = _load_in_order(session, query)
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


def list_recent(
    session: Session, user: User, f: QuestionFilter, *, after: list[object] | None, limit: int
) -> tuple[Sequence[Question], list[object] | None]:
    """Newest activity first (the closed tab, what needs no answer); the cursor is the
    last row's (updated_at, id)."""
    query = apply_filter(_scoped_ids(user), f)
    if after is not None:
        try:
            a_updated, a_id = after
            a_updated_dt = datetime.fromisoformat(str(a_updated))
        except (ValueError, TypeError) as exc:
            raise Invalid("Неверный cursor", code="invalid_cursor") from exc
        query = query.where(
            sa.tuple_(col(Question.updated_at), col(Question.id))
            < sa.tuple_(sa.literal(a_updated_dt, UTCDateTime()), sa.literal(a_id))
        )
    query = query.order_by(col(Question.updated_at).desc(), col(Question.id).desc())
    rows = _load_in_order(session, query.limit(limit + 1))
    next_after: list[object] | None = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_after = [last.updated_at.isoformat(), last.id]
    return rows[:limit], next_after


def new_since(session: Session, user: User, f: QuestionFilter, after_id: int) -> int:
    """How many questions of a tab's filter arrived after the question `after_id`."""
    query = apply_filter(
        sa.select(sa.func.count())
        .select_from(Question)
        .where(auth_service.scope_filter(user, Question.institution_id)),
        f,
    ).where(col(Question.id) > after_id)
    return int(session.execute(query).scalar_one())


# --- the reports' drill-down -------------------------------------------------------

FIRST_RESPONSE = ("met", "late")
SOURCES = ("any", "otklik", "native")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _apply_drill(query: _Q, f: QuestionFilter) -> _Q:
    """The filters behind a report's figures (`app.reports.figures` defines them)."""
    from app.directory.models import Institution, Sector, Territory
    from app.questions.models import Direction, Message, MessageSource
    from app.sla.models import ClockState, SlaClock, Target

    inst = sa.orm.aliased(Institution)
    if f.territory_id is not None:
        path = sa.select(col(Territory.path)).where(col(Territory.id) == f.territory_id)
        within = sa.select(col(Territory.id)).where(
            col(Territory.path).startswith(path.scalar_subquery())
        )
        query = query.where(
            col(Question.institution_id).in_(
                sa.select(col(inst.id)).where(col(inst.territory_id).in_(within))
            )
        )
    if f.institution_tree_id is not None:
        root = sa.select(col(inst.path)).where(col(inst.id) == f.institution_tree_id)
        tree = sa.orm.aliased(Institution)
        query = query.where(
            col(Question.institution_id).in_(
                sa.select(col(tree.id)).where(col(tree.path).startswith(root.scalar_subquery()))
            )
        )
    if f.sector is not None:
        if f.sector not in Sector.__members__:
            raise Invalid(f"Неизвестная отрасль: {f.sector}", code="invalid_sector")
        query = query.where(
            col(Question.institution_id).in_(
                sa.select(col(inst.id)).where(col(inst.sector) == f.sector)
            )
        )
    if f.created_from is not None:
        query = query.where(col(Question.created_at) >= _utc(f.created_from))
    if f.created_to is not None:
        query = query.where(col(Question.created_at) < _utc(f.created_to))
    if f.answered_from is not None:
        query = query.where(col(Question.first_response_at) >= _utc(f.answered_from))
    if f.answered_to is not None:
        query = query.where(col(Question.first_response_at) < _utc(f.answered_to))
    if f.first_response is not None:
        if f.first_response not in FIRST_RESPONSE:
            raise Invalid("first_response: met или late", code="invalid_first_response")
        states = (
            [ClockState.met]
            if f.first_response == "met"
            else [ClockState.missed, ClockState.breached]
        )
        query = query.where(
            sa.exists().where(
                col(SlaClock.question_id) == col(Question.id),
                col(SlaClock.target) == Target.first_response,
                col(SlaClock.state).in_([str(s) for s in states]),
            )
        )
    if f.breached is not None:
        late = sa.exists().where(
            col(SlaClock.question_id) == col(Question.id),
            sa.or_(
                col(SlaClock.breached_at).is_not(None),
                col(SlaClock.state).in_([str(ClockState.breached), str(ClockState.missed)]),
            ),
        )
        query = query.where(late if f.breached else sa.not_(late))
    if f.warning_at is not None:
        at = _utc(f.warning_at)
        query = query.where(
            sa.exists().where(
                col(SlaClock.question_id) == col(Question.id),
                col(SlaClock.state).in_([str(ClockState.running), str(ClockState.warning)]),
                col(SlaClock.warn_at) <= at,
                col(SlaClock.due_at) > at,
            ),
            col(Question.due_at) > at,
        )
    if f.source is not None:
        if f.source not in SOURCES:
            raise Invalid("source: any, otklik или native", code="invalid_source")
        by_otklik = sa.exists().where(
            col(Message.question_id) == col(Question.id),
            col(Message.direction) == Direction.outbound,
            col(Message.source) == MessageSource.otklik,
        )
        query = query.where(col(Question.first_response_at).is_not(None))
        if f.source != "any":
            query = query.where(by_otklik if f.source == "otklik" else sa.not_(by_otklik))
    return query


def filtered_ids(user: User, f: QuestionFilter) -> sa.Select[tuple[int]]:
    """The ids of the questions a filter selects in the user's scope, unordered: for
    exports that stream them (`app.reports.question_export`)."""
    return apply_filter(_scoped_ids(user), f)
