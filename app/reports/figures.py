"""SLA figures: the one module that defines and computes them, in the database, for the
dashboard, the report API, the pages and the exports.

The open backlog now is :mod:`app.reports.backlog`; the filter, scope and grouping
every figure shares are :mod:`app.reports.population`; SQL for both databases is
:mod:`app.reports.sql`.

Per group (institution, page, sector, territory, classification, day, week) of the
questions created in [start, end) that the caller may see:

- `questions`: every question (thread) created in the period, of any classification;
- `answered`: those with a public response of the page; `answered_otklik` of them had
  a reply written in Otklik, `answered_native` only replies written on the platform;
- `on_time`: first-response clocks met (answered within the target); `late`: first-
  response clocks missed (answered late) or breached and still unanswered;
- `breached`: questions with any clock that was breached or missed;
- `open`: still new, in progress or waiting for the citizen; `backlog_by_age` splits
  them by wall-clock age at `now`: under a day, 1–3, 3–7, over 7 days;
- `dismissed`: marked as needing no answer, also split by reason code, so a low
  breach rate cannot hide behind dismissals; `dismissal_share` = dismissed / questions;
- `on_time_rate`: on_time / (on_time + late), a fraction 0..1; null without any;
- median and p90 of first-response time in working minutes (the policy's calendar)
  and in wall-clock minutes, over answered first-response clocks, interpolated
  between closest ranks exactly like PostgreSQL's `percentile_cont`;
- `transferred_out`, `wrong_queue_*_minutes`: questions moved out of a queue and the
  time they sat there, charged to the queue that held them (the question itself is
  counted where it is now).

Every figure is a GROUP BY in the database; Python only names the groups and divides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.questions.models import (
    OPEN_STATUSES,
    Direction,
    DismissReason,
    Message,
    MessageSource,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.reports import sql
from app.reports.population import (
    ReportFilter,
    Scope,
    group_key,
    group_names,
    report_scope,
    row_key,
    visible_conditions,
)
from app.sla.models import ClockState, SlaClock, Target

_JUDGED = [str(s) for s in (ClockState.met, ClockState.missed, ClockState.breached)]
_OPEN = [str(s) for s in OPEN_STATUSES]
AGE_DAYS: tuple[tuple[str, float], ...] = (
    ("under_1d", 1),
    ("1d_3d", 3),
    ("3d_7d", 7),
    ("over_7d", math.inf),
)


class Previous(BaseModel):
    """The same group's figures in the previous period of the same length."""

    questions: int = 0
    on_time: int = 0
    late: int = 0
    on_time_rate: float | None = None
    median_first_response_working_minutes: float | None = None
    p90_first_response_working_minutes: float | None = None


class SlaRow(BaseModel):
    key: str
    name: str
    questions: int = 0
    answered: int = 0
    on_time: int = 0
    breached: int = 0
    open: int = 0
    dismissed: int = 0
    on_time_rate: float | None = None
    median_first_response_working_minutes: float | None = None
    p90_first_response_working_minutes: float | None = None
    median_first_response_wall_minutes: float | None = None
    p90_first_response_wall_minutes: float | None = None
    dismissed_by_reason: dict[str, int] = {}
    transferred_out: int = 0
    wrong_queue_wall_minutes: float = 0.0
    wrong_queue_working_minutes: float = 0.0
    late: int = 0
    answered_otklik: int = 0
    answered_native: int = 0
    dismissal_share: float | None = None
    backlog_by_age: dict[str, int] = {}
    previous: Previous | None = None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks, for checking the database's answer."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- the report ------------------------------------------------------------------


def sla_report(
    session: Session,
    user: User,
    f: ReportFilter,
    *,
    now: datetime | None = None,
    compare: bool = False,
) -> list[SlaRow]:
    """Rows of SLA figures per group, ordered by group (names, or time for days and
    weeks). `now` (default: the period's end) dates the backlog's ages; with `compare`,
    each row carries its figures of the previous period of the same length."""
    scope = report_scope(session, f, user)
    rows = _rows(session, user, f, scope, now or f.end)
    names = group_names(session, f.group_by, set(rows))
    for row in rows.values():
        row.name = names.get(row.key, row.key)
    if compare:
        before = _rows(session, user, f.previous(), scope, f.start)
        for key, row in rows.items():
            old = before.get(key)
            fields = set(Previous.model_fields)
            row.previous = Previous(**old.model_dump(include=fields)) if old else Previous()
    chronological = f.group_by in ("day", "week")
    return sorted(rows.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key))


def _rows(
    session: Session, user: User, f: ReportFilter, scope: Scope, now: datetime
) -> dict[str, SlaRow]:
    rows: dict[str, SlaRow] = {}

    def row(value: Any) -> SlaRow:
        key = row_key(f.group_by, value)
        if key not in rows:
            rows[key] = SlaRow(
                key=key,
                name=key,
                dismissed_by_reason={},
                backlog_by_age={k: 0 for k, _ in AGE_DAYS},
            )
        return rows[key]

    for values in session.execute(_counts(session, user, f, scope, now)):
        r = row(values[0])
        (
            r.questions,
            r.answered,
            r.on_time,
            judged,
            r.open,
            r.dismissed,
            r.breached,
            r.answered_otklik,
            *ages,
        ) = (int(v or 0) for v in values[1:])
        r.late = judged - r.on_time
        r.answered_native = r.answered - r.answered_otklik
        r.on_time_rate = _rate(r.on_time, judged)
        r.dismissal_share = _rate(r.dismissed, r.questions)
        r.backlog_by_age = dict(zip([k for k, _ in AGE_DAYS], ages, strict=True))
    for value, reason, n in session.execute(_dismissals(session, user, f, scope)):
        code = reason if reason in DismissReason.__members__ else str(DismissReason.other)
        r = row(value)
        r.dismissed_by_reason[code] = r.dismissed_by_reason.get(code, 0) + int(n)
    found = sql.percentiles(session, _response_times(session, user, f, scope), ("working", "wall"))
    for value, measures in found.items():
        r = row(value)
        (r.median_first_response_working_minutes, r.p90_first_response_working_minutes) = (
            _round(v) for v in measures["working"]
        )
        (r.median_first_response_wall_minutes, r.p90_first_response_wall_minutes) = (
            _round(v) for v in measures["wall"]
        )
    for value, n, wall, working in session.execute(_transfers(session, user, f, scope)):
        r = row(value)
        r.transferred_out = int(n)
        r.wrong_queue_wall_minutes = round(float(wall or 0.0), 1)
        r.wrong_queue_working_minutes = round(float(working or 0.0), 1)
    return rows


def _population(
    session: Session, user: User, f: ReportFilter, scope: Scope, *columns: Any
) -> tuple[Any, sa.Select[Any]]:
    """The key expression and a SELECT of the period's questions in scope, joined to
    their institution and territory."""
    key = group_key(
        session,
        f,
        scope,
        institution=Institution,
        territory=Territory,
        page_id=col(Question.page_id),
        created_at=col(Question.created_at),
        classification=col(Question.classification),
    )
    query = (
        sa.select(key.label("key"), *columns)
        .select_from(Question)
        .join(Institution, col(Institution.id) == col(Question.institution_id))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(
            col(Question.created_at) >= f.start,
            col(Question.created_at) < f.end,
            *visible_conditions(session, user, f, col(Question.institution_id)),
        )
    )
    return key, query


def _flag(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _counts(
    session: Session, user: User, f: ReportFilter, scope: Scope, now: datetime
) -> sa.Select[Any]:
    first = sa.orm.aliased(SlaClock)
    other = sa.orm.aliased(SlaClock)
    breached = (
        sa.select(sa.literal(1))
        .where(
            col(other.question_id) == col(Question.id),
            sa.or_(
                col(other.breached_at).is_not(None),
                col(other.state).in_([str(ClockState.breached), str(ClockState.missed)]),
            ),
        )
        .exists()
    )
    by_otklik = (
        sa.select(sa.literal(1))
        .where(
            col(Message.question_id) == col(Question.id),
            col(Message.direction) == Direction.outbound,
            col(Message.source) == MessageSource.otklik,
        )
        .exists()
    )
    is_open = col(Question.status).in_(_OPEN)
    answered = col(Question.first_response_at).is_not(None)
    ages = []
    newer = None
    for _, days in AGE_DAYS:
        cond: list[Any] = [is_open]
        if days != math.inf:
            cond.append(col(Question.created_at) > now - timedelta(days=days))
        if newer is not None:
            cond.append(col(Question.created_at) <= newer)
        ages.append(_flag(sa.and_(*cond)))
        newer = None if days == math.inf else now - timedelta(days=days)
    key, query = _population(
        session,
        user,
        f,
        scope,
        sa.func.count(),
        _flag(answered),
        _flag(col(first.state) == ClockState.met),
        _flag(col(first.state).in_(_JUDGED)),
        _flag(is_open),
        _flag(col(Question.status) == QuestionStatus.dismissed),
        _flag(breached),
        _flag(sa.and_(answered, by_otklik)),
        *ages,
    )
    return query.outerjoin(
        first,
        sa.and_(
            col(first.question_id) == col(Question.id),
            col(first.target) == Target.first_response,
        ),
    ).group_by(key)


def _dismissals(session: Session, user: User, f: ReportFilter, scope: Scope) -> sa.Select[Any]:
    key, query = _population(session, user, f, scope, col(Question.dismiss_reason), sa.func.count())
    return query.where(col(Question.status) == QuestionStatus.dismissed).group_by(
        key, col(Question.dismiss_reason)
    )


def _response_times(session: Session, user: User, f: ReportFilter, scope: Scope) -> sa.Subquery:
    _, query = _population(
        session,
        user,
        f,
        scope,
        col(SlaClock.working_minutes).label("working"),
        sa.func.coalesce(col(SlaClock.wall_minutes), 0.0).label("wall"),
    )
    return (
        query.join(SlaClock, col(SlaClock.question_id) == col(Question.id))
        .where(
            col(SlaClock.target) == Target.first_response,
            col(SlaClock.state).in_([str(ClockState.met), str(ClockState.missed)]),
            col(SlaClock.working_minutes).is_not(None),
        )
        .subquery()
    )


def _transfers(session: Session, user: User, f: ReportFilter, scope: Scope) -> sa.Select[Any]:
    """Time in the wrong queue, charged to the institution that held the question."""
    data = col(TimelineEntry.data)
    holder = data["from_institution_id"].as_integer()
    held = sa.orm.aliased(Institution)
    place = sa.orm.aliased(Territory)
    key = group_key(
        session,
        f,
        scope,
        institution=held,
        territory=place,
        page_id=col(Question.page_id),
        created_at=col(Question.created_at),
        classification=col(Question.classification),
    )
    return (
        sa.select(
            key.label("key"),
            sa.func.count(),
            sa.func.sum(data["held_wall_minutes"].as_float()),
            sa.func.sum(data["held_working_minutes"].as_float()),
        )
        .select_from(TimelineEntry)
        .join(Question, col(Question.id) == col(TimelineEntry.question_id))
        .join(held, col(held.id) == holder)
        .join(place, col(place.id) == col(held.territory_id))
        .where(
            col(TimelineEntry.kind) == "transferred",
            col(Question.created_at) >= f.start,
            col(Question.created_at) < f.end,
            *visible_conditions(session, user, f, holder),
        )
        .group_by(key)
    )
