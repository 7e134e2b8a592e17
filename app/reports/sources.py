"""Where the SLA figures are read from, for :mod:`app.reports.figures`: the daily rollup
(`report_day`) when it answers a period exactly, else the facts and transfers
(`report_fact`, `report_transfer`, kept by :mod:`app.reports.facts`); the facts for the
open ones' ages and the percentiles' response times. Each is one grouped SELECT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.reports import facts, sql
from app.reports.models import ReportDay, ReportFact, ReportTransfer
from app.reports.population import ReportFilter, Scope, group_key, visible_conditions

AGE_DAYS: tuple[tuple[str, float], ...] = (
    ("under_1d", 1),
    ("1d_3d", 3),
    ("3d_7d", 7),
    ("over_7d", math.inf),
)

# The counts that add up across questions, days and institutions (report_day's columns).
ADDITIVE = facts.ADDITIVE


def _local_days(f: ReportFilter, scope: Scope) -> tuple[date, date] | None:
    """The period as local dates [first, end) of the scope's zone, when it runs from
    one local midnight to another; else None."""
    tz = ZoneInfo(scope.timezone)
    a, b = f.start.astimezone(tz), f.end.astimezone(tz)
    if a.time() != time() or b.time() != time():
        return None
    return a.date(), b.date()


def one_zone(session: Session, user: User, f: ReportFilter, scope: Scope) -> bool:
    """Whether every institution in scope keeps its days in the scope's zone."""
    zones = session.execute(
        sa.select(col(Territory.timezone))
        .distinct()
        .select_from(Institution)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(*visible_conditions(session, user, f, col(Institution.id)))
    )
    return {z for (z,) in zones} <= {scope.timezone}


def daily(
    session: Session, user: User, f: ReportFilter, scope: Scope, zoned: bool | None = None
) -> tuple[date, date] | None:
    """Whether the daily rollup answers the period exactly: whole local days of the
    scope's zone, and every institution in scope keeps its days in that zone (`zoned`,
    when the caller knows it already)."""
    days = _local_days(f, scope)
    if days is None:
        return None
    if zoned is None:
        zoned = one_zone(session, user, f, scope)
    return days if zoned else None


def _key(session: Session, f: ReportFilter, scope: Scope, source: Any, daily: bool) -> Any:
    """The group key over a source with institution_id, page_id, classification and
    created_at (or, from the rollup, day) columns, joined to Institution and Territory."""
    if daily and f.group_by == "day":
        return source.c.day
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


# A grouped SELECT for several groupings at once, and how to read its rows: each row
# as (the grouping's index, its key, the other columns).
Grouped = tuple[sa.Select[Any], Callable[[Sequence[Any]], tuple[int, Any, list[Any]]]]


def _by(
    session: Session,
    f: ReportFilter,
    scope: Scope,
    source: Any,
    daily: bool,
    groupings: Sequence[str],
    also: Sequence[Any],
    columns: Sequence[Any],
) -> Grouped:
    """`columns` aggregated per (key, *also) for each of `groupings`, in one statement:
    GROUPING SETS on PostgreSQL (one pass over the rows for all of them), UNION ALL of
    one grouped SELECT each on SQLite."""
    keys = [_key(session, replace(f, group_by=g), scope, source, daily) for g in groupings]
    if sql.dialect(session) != "postgresql" or len(groupings) == 1:
        parts = [
            _grouped(source, key, sa.literal(i).label("g"), *also, *columns).group_by(key, *also)
            for i, key in enumerate(keys)
        ]
        query = parts[0] if len(parts) == 1 else sa.union_all(*parts)

        def plain(row: Sequence[Any]) -> tuple[int, Any, list[Any]]:
            return int(row[1]), row[0], list(row[2:])

        return query, plain  # type: ignore[return-value]
    # GROUPING(k...) has a bit per key, set where the row's set leaves that key out
    # (the first key is the highest bit); "total" groups by `also` alone.
    real = [i for i, g in enumerate(groupings) if g != "total"]
    sets = [sa.tuple_(*([keys[i]] if i in real else []), *also) for i in range(len(keys))]
    full = (1 << len(real)) - 1
    index = {full ^ (1 << (len(real) - 1 - j)): i for j, i in enumerate(real)}
    if "total" in groupings:
        index[full] = list(groupings).index("total")
    query = _grouped(
        source,
        sa.func.grouping(*(keys[i] for i in real)),
        *(keys[i] for i in real),
        *also,
        *columns,
    ).group_by(sa.func.grouping_sets(*sets))

    def sets_row(row: Sequence[Any]) -> tuple[int, Any, list[Any]]:
        i = index[int(row[0])]
        key = row[1 + real.index(i)] if i in real else "total"
        return i, key, list(row[1 + len(real) :])

    return query, sets_row


def _fine(
    session: Session,
    source: Any,
    groupings: Sequence[str],
    keep: Sequence[str],
    totals: dict[str, Any],
) -> Any:
    """The daily rows of `source` summed (`totals`) to the coarsest grain that every
    grouping in `groupings` can still be read from: per institution and the `keep`
    columns, and per page, classification and local day (or week) only where a grouping
    needs them (those it does not are NULL). A dashboard's five groupings then read a
    few thousand rows instead of a quarter's rollup five times."""
    columns = [source.c.institution_id.label("institution_id")]
    group = [source.c.institution_id]

    def pick(name: str, needed: bool, value: Any) -> None:
        columns.append(value.label(name) if needed else sa.null().label(name))
        if needed:
            group.append(value)

    pick("page_id", "page" in groupings, source.c.page_id)
    pick("classification", "classification" in groupings, source.c.classification)
    # A week's key is the date of its Monday, which is its own week's key again.
    day = source.c.day if "day" in groupings else sql.week_of_day(session, source.c.day)
    pick("day", "day" in groupings or "week" in groupings, day)
    for name in keep:
        columns.append(source.c[name])
        group.append(source.c[name])
    return (
        sa.select(*columns, *(total.label(name) for name, total in totals.items()))
        .group_by(*group)
        .cte("fine")
        .prefix_with("MATERIALIZED")  # once, for every grouping's SELECT to read
    )


def sums(
    session: Session,
    user: User,
    f: ReportFilter,
    scope: Scope,
    days: tuple[date, date] | None,
    groupings: Sequence[str],
) -> Grouped:
    """Per group of each grouping and dismissal reason, the sums of the ADDITIVE counts:
    from the daily rollup when it answers the period exactly, else from the facts and
    transfers. Two
    more columns mark what was summed: from the rollup, its rows and the sum of their
    fold stamps (any change to a fact in scope rewrites its day's rows with a new one);
    from the facts, 0 and NULL (no mark)."""
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
        source = facts.counted(
            "created_at",
            [
                col(fact.created_at) >= f.start,
                col(fact.created_at) < f.end,
                *visible_conditions(session, user, f, col(fact.institution_id)),
            ],
            [
                col(moved.created_at) >= f.start,
                col(moved.created_at) < f.end,
                *visible_conditions(session, user, f, col(moved.holder_id)),
            ],
        ).subquery()
    if days is None:
        columns = [*(sa.func.sum(source.c[k]) for k in ADDITIVE), sa.literal(0), sa.null()]
        return _by(session, f, scope, source, False, groupings, [source.c.dismiss_reason], columns)
    # The rollup's mark of what was summed: its rows and their folds' stamps.
    totals: dict[str, Any] = {k: sa.func.sum(source.c[k]) for k in ADDITIVE}
    totals.update(rows=sa.func.count(), stamps=sa.func.sum(source.c.stamp))
    fine = _fine(session, source, groupings, ["dismiss_reason"], totals)
    columns = [sa.func.sum(fine.c[k]) for k in totals]
    return _by(session, f, scope, fine, True, groupings, [fine.c.dismiss_reason], columns)


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


def ages(
    session: Session,
    user: User,
    f: ReportFilter,
    scope: Scope,
    now: datetime,
    daily: bool,
    groupings: Sequence[str],
) -> Grouped:
    """The period's open questions per group of each grouping by wall-clock age at
    `now`."""
    source = _facts(session, user, f, col(ReportFact.open).is_(True))
    ages = {}
    newer = None
    for name, days in AGE_DAYS:
        cond: list[Any] = []
        if days != math.inf:
            cond.append(source.c.created_at > now - timedelta(days=days))
        if newer is not None:
            cond.append(source.c.created_at <= newer)
        ages[name] = sa.func.sum(sa.case((sa.and_(sa.true(), *cond), 1), else_=0))
        newer = None if days == math.inf else now - timedelta(days=days)
    if not daily:
        return _by(session, f, scope, source, False, groupings, [], list(ages.values()))
    fine = _fine(session, source, groupings, [], ages)
    return _by(session, f, scope, fine, True, groupings, [], [sa.func.sum(fine.c[k]) for k in ages])


def response_times(
    session: Session, user: User, f: ReportFilter, scope: Scope, daily: bool
) -> sa.Subquery:
    """First-response times of the period's answered first-response clocks."""
    source = _facts(session, user, f, col(ReportFact.first_working).is_not(None))
    key = _key(session, f, scope, source, daily)
    return _grouped(source, key, source.c.working, source.c.wall).subquery()
