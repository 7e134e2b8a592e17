"""JSON API of questions: reading (this module) and the operator's actions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.deps import ApiUserDep
from app.auth.models import Role, User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.json_api import ERROR_RESPONSES, Listing, clamp_limit, decode_cursor, encode_cursor
from app.directory.models import Institution, Territory
from app.questions import queries, queue
from app.questions.models import (
    CitizenRead,
    ClockRead,
    Message,
    MessageRead,
    Question,
    QuestionDetail,
    QuestionRead,
    SlaRead,
    ThreadContext,
    TimelineEntry,
    TimelineRead,
)
from app.routing.models import Category
from app.sla.models import SlaClock

router = APIRouter(prefix="/api/v1", tags=["questions"], responses=ERROR_RESPONSES)


def _clocks(session: Session, ids: Sequence[int]) -> dict[int, SlaRead]:
    result = {i: SlaRead() for i in ids}
    if not ids:
        return result
    for clock in session.exec(select(SlaClock).where(col(SlaClock.question_id).in_(ids))):
        setattr(
            result[clock.question_id],
            str(clock.target),
            ClockRead(
                due_at=clock.due_at,
                state=clock.state,
                done_at=clock.done_at,
                working_minutes=None
                if clock.working_minutes is None
                else round(clock.working_minutes, 1),
                wall_minutes=None if clock.wall_minutes is None else round(clock.wall_minutes, 1),
            ),
        )
    return result


def question_reads(session: Session, questions: Sequence[Question]) -> list[QuestionRead]:
    ids = [q.id for q in questions if q.id is not None]
    clocks = _clocks(session, ids)
    category_ids = {q.category_id for q in questions if q.category_id}
    categories = (
        {
            c.id: c.name
            for c in session.exec(select(Category).where(col(Category.id).in_(category_ids)))
        }
        if category_ids
        else {}
    )
    return [
        QuestionRead(
            id=q.id or 0,
            page_id=q.page_id,
            institution_id=q.institution_id,
            platform=q.platform,
            kind=q.kind,
            status=q.status,
            classification=q.classification,
            classification_rule=q.classification_rule,
            category=categories.get(q.category_id) if q.category_id else None,
            category_id=q.category_id,
            priority=q.priority,
            citizen=CitizenRead(platform_id=q.citizen_platform_id, name=q.citizen_name),
            text=q.text,
            created_at=q.created_at,
            received_at=q.received_at,
            permalink=q.permalink,
            assignee_id=q.assignee_id,
            linked_question_id=q.linked_question_id,
            dismiss_reason=q.dismiss_reason,
            sla=clocks[q.id or 0],
        )
        for q in questions
    ]


def question_detail(session: Session, question: Question) -> QuestionDetail:
    base = question_reads(session, [question])[0]
    messages = session.exec(
        select(Message)
        .where(Message.question_id == question.id)
        # A reply not yet published has no platform time: it sorts by when it was written.
        .order_by(sa.func.coalesce(col(Message.sent_at), col(Message.received_at)), col(Message.id))
    ).all()
    timeline = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.question_id == question.id)
        .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
    ).all()
    context = session.exec(
        select(ThreadContext.text).where(
            ThreadContext.page_id == question.page_id,
            ThreadContext.thread_key == question.thread_key,
        )
    ).first()
    return QuestionDetail(
        **base.model_dump(),
        messages=[MessageRead.model_validate(m, from_attributes=True) for m in messages],
        timeline=[TimelineRead.model_validate(t, from_attributes=True) for t in timeline],
        context=context,
    )


def _check_territory(session: Session, user: User, territory_id: int) -> None:
    """NotFound unless the territory exists and the caller may see something in it: a
    supervisor anything within their own territory, anyone an institution of theirs."""
    target = session.get(Territory, territory_id)
    ids = auth_service.visible_institution_ids(user)
    if target is None:
        raise NotFound("Территория не найдена")
    if ids is None:
        return
    if user.role == Role.supervisor and user.territory_id is not None:
        own = session.get(Territory, user.territory_id)
        if own is not None and target.path.startswith(own.path):
            return
    inside = (
        sa.select(sa.literal(1))
        .select_from(Institution)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(col(Territory.path).startswith(target.path), col(Institution.id).in_(ids))
        .limit(1)
    )
    if session.execute(inside).first() is None:
        raise NotFound("Территория не найдена")


@router.get("/questions", response_model=Listing[QuestionRead], name="api:question_list")
def list_questions(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    institution_id: int | None = None,
    page_id: int | None = None,
    status: Annotated[
        list[str] | None, Query(description="new, in_progress, ..., or `open`; repeatable")
    ] = None,
    sla_state: str | None = None,
    classification: str | None = None,
    q: Annotated[str | None, Query(description="text or citizen name contains")] = None,
    assignee_id: int | None = None,
    territory_id: Annotated[int | None, Query(description="territory subtree")] = None,
    sector: str | None = None,
    created_from: Annotated[
        datetime | None, Query(alias="from", description="received at or after (ISO 8601)")
    ] = None,
    created_to: Annotated[
        datetime | None, Query(alias="to", description="received before (ISO 8601)")
    ] = None,
    answered_from: Annotated[datetime | None, Query(description="first answer at or after")] = None,
    answered_to: Annotated[datetime | None, Query(description="first answer before")] = None,
    overdue: Annotated[bool, Query(description="an active deadline has passed")] = False,
    source: Annotated[
        str | None, Query(description="answered with a reply from `otklik` or only `native`")
    ] = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Listing[QuestionRead]:
    """Questions in the caller's scope, most urgent first (open by due time, then the rest).

    `territory_id` covers its subtree; a territory outside the caller's scope is a 404,
    as a missing one is."""
    size = clamp_limit(limit)
    if territory_id is not None:
        _check_territory(session, user, territory_id)
    f = queries.QuestionFilter(
        institution_id=institution_id,
        page_id=page_id,
        status=status,
        sla_state=sla_state,
        classification=classification,
        q=q,
        assignee_id=assignee_id,
        territory_id=territory_id,
        sector=sector,
        created_from=created_from,
        created_to=created_to,
        answered_from=answered_from,
        answered_to=answered_to,
        due_by=clock() if overdue else None,
        source=source,
    )
    after = decode_cursor(cursor)
    if after is None and queue.only_open(f):
        rows, next_after = queue.first_open_page(session, user, f, now=clock(), limit=size)
    else:
        rows, next_after = queries.list_questions(session, user, f, after=after, limit=size)
    return Listing(
        items=question_reads(session, rows),
        next_cursor=encode_cursor(next_after) if next_after else None,
    )


@router.get("/questions/{question_id}", response_model=QuestionDetail, name="api:question_get")
def get_question(question_id: int, session: SessionDep, user: ApiUserDep) -> QuestionDetail:
    """A question with its messages (oldest first) and timeline."""
    return question_detail(session, queries.get_question(session, user, question_id))
