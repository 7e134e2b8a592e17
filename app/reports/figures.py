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
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.questions.models import DismissReason
from app.reports import facts, sql
from app.reports.models import ReportDay, ReportFact, ReportTransfer
from app.reports.population import (
    ReportFilter,
    Scope,
    group_key,
    group_names,
    report_scope,
    row_key,
    visible_conditions,
)

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
    percentiles: bool = True,
    previous_percentiles: bool = True,
) -> list[SlaRow]:
    """Rows of SLA figures per group, ordered by group (names, or time for days and
    weeks). `now` (default: the period's end) dates the backlog's ages; with `compare`,
    each row carries its figures of the previous period of the same length.

    The percentiles are the one figure that cannot be summed from the daily rollup: each
    is a sort of the period's response times. Callers that show none of them (the
    dashboard's trend and breakdowns, its ranking's previous period) pass
    `percentiles=False` / `previous_percentiles=False` and get None there."""
    scope = report_scope(session, f, user)
    facts.current(session)
    rows = _rows(session, user, f, scope, now or f.end, WORKING_AND_WALL if percentiles else ())
    names = group_names(session, f.group_by, set(rows))
    for row in rows.values():
        row.name = names.get(row.key, row.key)
    if compare:
        # Previous carries the working-time percentiles only.
        measures = ("working",) if previous_percentiles else ()
        before = _rows(session, user, f.previous(), scope, f.start, measures)
        for key, row in rows.items():
            old = before.get(key)
            fields = set(Previous.model_fields)
            row.previous = Previous(**old.model_dump(include=fields)) if old else Previous()
    chronological = f.group_by in ("day", "week")
    return sorted(rows.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key))


WORKING_AND_WALL = ("working", "wall")


def _rows(
    session: Session,
    user: User,
    f: ReportFilter,
    scope: Scope,
    now: datetime,
    measures: tuple[str, ...] = WORKING_AND_WALL,
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

    # Whole local days of one zone: the rollup answers the counts, and days and weeks
    # are read from the facts' own local dates.
    days = _daily(session, user, f, scope)
    # The additive counts: one grouped pass, per group and dismissal reason.
    sums: dict[str, list[float]] = {}
    for value, reason, *values in session.execute(_sums(session, user, f, scope, days)):
        r = row(value)
        total = sums.setdefault(r.key, [0.0] * len(ADDITIVE))
        for i, v in enumerate(values):
            total[i] += float(v or 0)
        if reason:
            code = reason if reason in DismissReason.__members__ else str(DismissReason.other)
            dismissed = int(values[ADDITIVE.index("dismissed")] or 0)
            r.dismissed_by_reason[code] = r.dismissed_by_reason.get(code, 0) + dismissed
    for key, total in sums.items():
        r = rows[key]
        n = dict(zip(ADDITIVE, total, strict=True))
        r.questions, r.answered, r.on_time = (
            int(n["questions"]),
            int(n["answered"]),
            int(n["on_time"]),
        )
        judged = int(n["judged"])
        r.open, r.dismissed, r.breached = int(n["open"]), int(n["dismissed"]), int(n["breached"])
        r.answered_otklik = int(n["answered_otklik"])
        r.late = judged - r.on_time
        r.answered_native = r.answered - r.answered_otklik
        r.on_time_rate = _rate(r.on_time, judged)
        r.dismissal_share = _rate(r.dismissed, r.questions)
        r.transferred_out = int(n["transferred_out"])
        r.wrong_queue_wall_minutes = round(n["held_wall_minutes"], 1)
        r.wrong_queue_working_minutes = round(n["held_working_minutes"], 1)
        r.dismissed_by_reason = {k: v for k, v in r.dismissed_by_reason.items() if v}
    for value, *ages in session.execute(_ages(session, user, f, scope, now, days is not None)):
        r = row(value)
        r.backlog_by_age = {k: int(v or 0) for (k, _), v in zip(AGE_DAYS, ages, strict=True)}
    if not measures:
        return rows
    times = _response_times(session, user, f, scope, days is not None)
    for value, found in sql.percentiles(session, times, measures).items():
        r = row(value)
        (r.median_first_response_working_minutes, r.p90_first_response_working_minutes) = (
            _round(v) for v in found["working"]
        )
        if "wall" in found:
            (r.median_first_response_wall_minutes, r.p90_first_response_wall_minutes) = (
                _round(v) for v in found["wall"]
            )
    return rows


# The counts that add up across questions, days and institutions (report_day's columns).
ADDITIVE = (
    "questions",
    "answered",
    "answered_otklik",
    "on_time",
    "judged",
    "open",
    "dismissed",
    "breached",
    "transferred_out",
    "held_wall_minutes",
    "held_working_minutes",
)


def _local_days(f: ReportFilter, scope: Scope) -> tuple[date, date] | None:
    """The period as local dates [first, end) of the scope's zone, when it runs from
    one local midnight to another; else None."""
    tz = ZoneInfo(scope.timezone)
    a, b = f.start.astimezone(tz), f.end.astimezone(tz)
    if a.time() != time() or b.time() != time():
        return None
    return a.date(), b.date()


def _daily(session: Session, user: User, f: ReportFilter, scope: Scope) -> tuple[date, date] | None:
    """Whether the daily rollup answers the period exactly: whole local days of the
    scope's zone, and every institution in scope keeps its days in that zone."""
    days = _local_days(f, scope)
    if days is None:
        return None
    zones = session.execute(
        sa.select(col(Territory.timezone))
        .distinct()
        .select_from(Institution)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(*visible_conditions(session, user, f, col(Institution.id)))
    )
    return days if {z for (z,) in zones} <= {scope.timezone} else None


def _key(session: Session, f: ReportFilter, scope: Scope, source: Any, daily: bool) -> Any:
    """The group key over a source with institution_id, page_id, classification and
    created_at (or, from the rollup, day) columns, joined to Institution and Territory."""
    if daily and f.group_by == "day":
        return (
            sa.cast(source.c.day, sa.String)
            if sql.dialect(session) == "postgresql"
            else source.c.day
        )
    if daily and f.group_by == "week":
        return sql.week_of_day(session, source.c.day)
    return group_key(
        session,
        f,
        scope,
        institution=Institution,
        territory=Territory,
        page_id=source.c.page_id,
        created_at=source.c.created_at if not daily else None,
        classification=source.c.classification,
    )


def _grouped(source: Any, key: Any, *columns: Any) -> sa.Select[Any]:
    return (
        sa.select(key.label("key"), *columns)
        .select_from(source)
        .join(Institution, col(Institution.id) == source.c.institution_id)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
    )


def _sums(
    session: Session, user: User, f: ReportFilter, scope: Scope, days: tuple[date, date] | None
) -> sa.Select[Any]:
    """Per group and dismissal reason, the sums of the ADDITIVE counts: from the daily
    rollup when it answers the period exactly, else from the facts and transfers."""
    if days is not None:
        d = ReportDay
        source: Any = (
            sa.select(ReportDay)
            .where(
                col(d.day) >= days[0],
                col(d.day) < days[1],
                *visible_conditions(session, user, f, col(d.institution_id)),
            )
            .subquery()
        )
    else:
        fact, moved = ReportFact, ReportTransfer
        zero, none = sa.literal(0), sa.literal(0.0)
        flags = [
            sa.literal(1),
            *(sa.case((getattr(fact, k), 1), else_=0) for k in ADDITIVE[1:8]),
        ]
        facts_part = sa.select(
            col(fact.institution_id).label("institution_id"),
            col(fact.page_id).label("page_id"),
            col(fact.classification).label("classification"),
            col(fact.created_at).label("created_at"),
            col(fact.dismiss_reason).label("dismiss_reason"),
            *(v.label(k) for k, v in zip(ADDITIVE[:8], flags, strict=True)),
            zero.label("transferred_out"),
            none.label("held_wall_minutes"),
            none.label("held_working_minutes"),
        ).where(
            col(fact.created_at) >= f.start,
            col(fact.created_at) < f.end,
            *visible_conditions(session, user, f, col(fact.institution_id)),
        )
        moves_part = sa.select(
            col(moved.holder_id),
            col(moved.page_id),
            col(moved.classification),
            col(moved.created_at),
            sa.literal(""),
            *([zero] * 8),
            sa.literal(1),
            col(moved.held_wall_minutes),
            col(moved.held_working_minutes),
        ).where(
            col(moved.created_at) >= f.start,
            col(moved.created_at) < f.end,
            *visible_conditions(session, user, f, col(moved.holder_id)),
        )
        source = sa.union_all(facts_part, moves_part).subquery()
    key = _key(session, f, scope, source, days is not None)
    reason = source.c.dismiss_reason
    return _grouped(source, key, reason, *(sa.func.sum(source.c[k]) for k in ADDITIVE)).group_by(
        key, reason
    )


def _facts(session: Session, user: User, f: ReportFilter, *where: Any) -> Any:
    fact = ReportFact
    return (
        sa.select(
            col(fact.institution_id).label("institution_id"),
            col(fact.page_id).label("page_id"),
            col(fact.classification).label("classification"),
            col(fact.created_at).label("created_at"),
            col(fact.day).label("day"),
            col(fact.first_working).label("working"),
            col(fact.first_wall).label("wall"),
        )
        .where(
            *where,
            col(fact.created_at) >= f.start,
            col(fact.created_at) < f.end,
            *visible_conditions(session, user, f, col(fact.institution_id)),
        )
        .subquery()
    )


def _ages(
    session: Session, user: User, f: ReportFilter, scope: Scope, now: datetime, daily: bool
) -> sa.Select[Any]:
    """The period's open questions per group by wall-clock age at `now`."""
    source = _facts(session, user, f, col(ReportFact.open).is_(True))
    ages = []
    newer = None
    for _, days in AGE_DAYS:
        cond: list[Any] = []
        if days != math.inf:
            cond.append(source.c.created_at > now - timedelta(days=days))
        if newer is not None:
            cond.append(source.c.created_at <= newer)
        ages.append(sa.func.sum(sa.case((sa.and_(sa.true(), *cond), 1), else_=0)))
        newer = None if days == math.inf else now - timedelta(days=days)
    key = _key(session, f, scope, source, daily)
    return _grouped(source, key, *ages).group_by(key)


def _response_times(
    session: Session, user: User, f: ReportFilter, scope: Scope, daily: bool
) -> sa.Subquery:
    """First-response times of the period's answered first-response clocks."""
    source = _facts(session, user, f, col(ReportFact.first_working).is_not(None))
    key = _key(session, f, scope, source, daily)
    return _grouped(source, key, source.c.working, source.c.wall).subquery()
