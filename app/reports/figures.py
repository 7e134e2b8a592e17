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

Every figure is a GROUP BY in the database (:mod:`app.reports.sources`: the daily
rollup or the per-question facts, whose per-question half of these definitions is
:mod:`app.reports.facts`); Python only names the groups, adds a group's rows per
dismissal reason and divides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from app.auth.models import User
from app.questions.models import DismissReason
from app.reports import fold, sources
from app.reports.percentiles import percentiles as percentiles_of
from app.reports.population import (
    ReportFilter,
    Scope,
    group_names,
    report_scope,
    row_key,
)
from app.reports.sources import ADDITIVE, AGE_DAYS


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
    percentiles: bool | tuple[str, ...] = True,
    previous_percentiles: bool = True,
    prepared: Prepared | None = None,
) -> list[SlaRow]:
    """Rows of SLA figures per group, ordered by group (names, or time for days and
    weeks). `now` (default: the period's end) dates the backlog's ages; with `compare`,
    each row carries its figures of the previous period of the same length.

    The percentiles are the one figure that cannot be summed from the daily rollup: each
    is a sort of the period's response times. Callers that show none of them pass
    `percentiles=False` / `previous_percentiles=False` and get None there; a tuple of
    measures ("working", "wall") computes those only. Several groupings of one scope
    and period at once: `sla_reports`."""
    plan = Plan(
        f.group_by,
        WORKING_AND_WALL if percentiles is True else percentiles or (),
        compare,
        ("working",) if previous_percentiles else (),
    )
    return sla_reports(session, user, f, [plan], now=now, prepared=prepared)[f.group_by]


WORKING_AND_WALL = ("working", "wall")


@dataclass(frozen=True)
class Plan:
    """One grouping of a report: the percentiles it computes ("working", "wall"), and
    whether its rows carry the previous period's figures (with the working-time
    percentiles named in `previous_measures`)."""

    group_by: str
    measures: tuple[str, ...] = WORKING_AND_WALL
    compare: bool = False
    previous_measures: tuple[str, ...] = ("working",)


@dataclass(frozen=True)
class Prepared:
    """What every report of one scope shares: the scope, and whether all of its
    institutions keep their days in the scope's zone (then whole local days are read
    from the daily rollup)."""

    scope: Scope
    zoned: bool


def prepare(session: Session, user: User, f: ReportFilter) -> Prepared:
    """Check the filter and the caller's scope, fold what changed into the facts (exact
    figures), and look at the scope's zones: once for any number of reports of that
    scope (any grouping and period)."""
    scope = report_scope(session, f, user)
    fold.current(session)
    return Prepared(scope, sources.one_zone(session, user, f, scope))


def sla_reports(
    session: Session,
    user: User,
    f: ReportFilter,
    plans: Sequence[Plan],
    *,
    now: datetime | None = None,
    prepared: Prepared | None = None,
) -> dict[str, list[SlaRow]]:
    """`sla_report` for several groupings of the scope and period of `f` (its own
    `group_by` aside), as the dashboard asks: their counts and ages are read in one
    pass each (GROUPING SETS on PostgreSQL), the previous period's likewise.
    `prepared` (see `prepare`): the scope checked, the facts folded and the zones looked
    at, when the caller did that already for other reads of the same scope."""
    if prepared is None:
        prepared = prepare(session, user, f)
    for p in plans:
        report_scope(session, replace(f, group_by=p.group_by))  # a known grouping
    rows = _rows(session, user, f, prepared, now or f.end, {p.group_by: p.measures for p in plans})
    compared = {p.group_by: p.previous_measures for p in plans if p.compare}
    before = (
        _rows(session, user, f.previous(), prepared, f.start, compared, ages=False)
        if compared
        else {}
    )
    out: dict[str, list[SlaRow]] = {}
    for p in plans:
        found = rows[p.group_by]
        names = group_names(session, p.group_by, set(found))
        for row in found.values():
            row.name = names.get(row.key, row.key)
            if p.compare:
                old = before[p.group_by].get(row.key)
                fields = set(Previous.model_fields)
                row.previous = Previous(**old.model_dump(include=fields)) if old else Previous()
        chronological = p.group_by in ("day", "week")
        out[p.group_by] = sorted(
            found.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key)
        )
    return out


def _rows(
    session: Session,
    user: User,
    f: ReportFilter,
    prepared: Prepared,
    now: datetime,
    plan: dict[str, tuple[str, ...]],
    *,
    ages: bool = True,
) -> dict[str, dict[str, SlaRow]]:
    """The rows of one period for each grouping of `plan` (with the percentiles it
    names); `ages` False leaves the open ones' ages out (the previous period's rows
    carry none)."""
    groupings = list(plan)
    rows: dict[str, dict[str, SlaRow]] = {g: {} for g in groupings}

    def row(group_by: str, value: Any) -> SlaRow:
        key = row_key(group_by, value)
        found = rows[group_by]
        if key not in found:
            found[key] = SlaRow(
                key=key,
                name=key,
                dismissed_by_reason={},
                backlog_by_age={k: 0 for k, _ in AGE_DAYS},
            )
        return found[key]

    # Whole local days of one zone: the rollup answers the counts, and days and weeks
    # are read from the facts' own local dates.
    scope = prepared.scope
    days = sources.daily(session, user, f, scope, prepared.zoned)
    # The additive counts: one grouped pass, per group and dismissal reason.
    sums: dict[tuple[str, str], list[float]] = {}
    summed, stamp = 0, 0
    query, read = sources.sums(session, user, f, scope, days, groupings)
    for raw in session.execute(query):
        i, value, (reason, *values) = read(raw)
        *values, rows_summed, stamps = values
        summed += int(rows_summed or 0)
        stamp += int(stamps or 0)
        g = groupings[i]
        r = row(g, value)
        total = sums.setdefault((g, r.key), [0.0] * len(ADDITIVE))
        for j, v in enumerate(values):
            total[j] += float(v or 0)
        if reason:
            code = reason if reason in DismissReason.__members__ else str(DismissReason.other)
            dismissed = int(values[ADDITIVE.index("dismissed")] or 0)
            r.dismissed_by_reason[code] = r.dismissed_by_reason.get(code, 0) + dismissed
    for (g, key), total in sums.items():
        _counts(rows[g][key], dict(zip(ADDITIVE, total, strict=True)))
    if ages:
        query, read = sources.ages(session, user, f, scope, now, days is not None, groupings)
        for raw in session.execute(query):
            i, value, counts = read(raw)
            r = row(groupings[i], value)
            r.backlog_by_age = {k: int(v or 0) for (k, _), v in zip(AGE_DAYS, counts, strict=True)}
    # Kept under the rollup's mark: a sort that only a change in scope can change.
    mark = (summed, stamp) if days is not None else None
    for g, measures in plan.items():
        if not measures:
            continue
        times = sources.response_times(
            session, user, replace(f, group_by=g), scope, days is not None
        )
        found_by_key = percentiles_of(session, times, measures, mark=mark, grouped=g != "total")
        for value, found in found_by_key.items():
            r = row(g, value)
            (r.median_first_response_working_minutes, r.p90_first_response_working_minutes) = (
                _round(v) for v in found["working"]
            )
            if "wall" in found:
                (r.median_first_response_wall_minutes, r.p90_first_response_wall_minutes) = (
                    _round(v) for v in found["wall"]
                )
    return rows


def _counts(r: SlaRow, n: dict[str, float]) -> None:
    """A row's figures from its group's sums of the ADDITIVE counts."""
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
