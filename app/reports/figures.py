"""SLA figures: the one module that computes them, for the API, the pages and the exports.

The open backlog by age is :mod:`app.reports.backlog`; the filter, scope and grouping
both share are :mod:`app.reports.population`.

Per group (institution, page, sector, territory, day, week) of the questions created
in [start, end) that the caller may see:

- `questions`: every question (thread) created in the period, of any classification;
- `answered`: those with a public response of the page;
- `on_time`: first-response clocks met (answered within the target);
- `breached`: questions with a clock that was breached or missed (answered late);
- `open`: still new, in progress or waiting for the citizen;
- `dismissed`: marked as needing no answer, also split by reason code, so a low
  breach rate cannot hide behind dismissals;
- `on_time_rate`: on_time / first-response clocks with an outcome (met, missed, or
  breached and still unanswered), a fraction 0..1; null without any;
- median and p90 of first-response time in working minutes (the policy's calendar)
  and in wall-clock minutes, over answered first-response clocks (interpolated);
- `transferred_out`, `wrong_queue_*_minutes`: questions moved out of a queue and the
  time they sat there, charged to the queue that held them (the question itself is
  counted where it is now).

Territory groups roll up to the level just below the `territory_id` filter (or to the
top-level territories). Days and weeks are local dates of the filter's territory
(else Moscow time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.questions.models import (
    OPEN_STATUSES,
    DismissReason,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.reports.population import (
    ReportFilter,
    group_keyer,
    group_names,
    report_scope,
    visible_conditions,
)
from app.sla.models import ClockState, SlaClock, Target

_JUDGED = (ClockState.met, ClockState.missed, ClockState.breached)
_OPEN = [str(s) for s in OPEN_STATUSES]


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


@dataclass
class _Acc:
    row: SlaRow
    judged: int = 0
    working: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (like PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --- the report ------------------------------------------------------------------


def sla_report(session: Session, user: User, f: ReportFilter) -> list[SlaRow]:
    """Rows of SLA figures per group, ordered by group (names, or time for days and weeks)."""
    scope = report_scope(session, f)
    key_of = group_keyer(session, f, scope)
    period = [col(Question.created_at) >= f.start, col(Question.created_at) < f.end]
    where = visible_conditions(session, user, f, col(Question.institution_id))
    accs: dict[str, _Acc] = {}

    def acc(key: str) -> _Acc:
        if key not in accs:
            accs[key] = _Acc(SlaRow(key=key, name=key, dismissed_by_reason={}))
        return accs[key]

    base = (
        sa.select(
            col(Question.id),
            col(Question.institution_id),
            col(Question.page_id),
            col(Question.created_at),
            col(Question.status),
            col(Question.dismiss_reason),
            col(Question.first_response_at),
            col(Institution.sector),
            col(Territory.path),
        )
        .join(Institution, col(Institution.id) == col(Question.institution_id))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(*period, *where)
    )
    keys: dict[int, str] = {}
    for qid, inst_id, page_id, created, status, reason, first_at, sector, path in session.execute(
        base
    ):
        key = key_of(inst_id, page_id, created, str(sector), path)
        keys[qid] = key
        row = acc(key).row
        row.questions += 1
        row.answered += first_at is not None
        row.open += str(status) in _OPEN
        if status == QuestionStatus.dismissed:
            row.dismissed += 1
            code = reason if reason in DismissReason.__members__ else DismissReason.other
            row.dismissed_by_reason[code] = row.dismissed_by_reason.get(code, 0) + 1
    clocks = (
        sa.select(
            col(SlaClock.question_id),
            col(SlaClock.target),
            col(SlaClock.state),
            col(SlaClock.breached_at),
            col(SlaClock.working_minutes),
            col(SlaClock.wall_minutes),
        )
        .join(Question, col(Question.id) == col(SlaClock.question_id))
        .where(*period, *where)
    )
    breached: set[int] = set()
    for qid, target, state, breached_at, working, wall in session.execute(clocks):
        a = acc(keys[qid])
        if breached_at is not None or state in (ClockState.breached, ClockState.missed):
            breached.add(qid)
        if target != Target.first_response:
            continue
        if state in _JUDGED:
            a.judged += 1
        if state == ClockState.met:
            a.row.on_time += 1
        if state in (ClockState.met, ClockState.missed) and working is not None:
            a.working.append(working)
            a.wall.append(wall or 0.0)
    for qid in breached:
        acc(keys[qid]).row.breached += 1
    _charge_transfers(session, user, f, key_of, acc)
    names = group_names(session, f.group_by, set(accs))
    rows = []
    for key, a in accs.items():
        row = a.row
        row.name = names.get(key, key)
        row.on_time_rate = _round(row.on_time / a.judged, 4) if a.judged else None
        row.median_first_response_working_minutes = _round(percentile(a.working, 0.5))
        row.p90_first_response_working_minutes = _round(percentile(a.working, 0.9))
        row.median_first_response_wall_minutes = _round(percentile(a.wall, 0.5))
        row.p90_first_response_wall_minutes = _round(percentile(a.wall, 0.9))
        row.wrong_queue_wall_minutes = round(row.wrong_queue_wall_minutes, 1)
        row.wrong_queue_working_minutes = round(row.wrong_queue_working_minutes, 1)
        rows.append(row)
    chronological = f.group_by in ("day", "week")
    return sorted(rows, key=lambda r: r.key if chronological else (r.name.lower(), r.key))


def _charge_transfers(session: Session, user: User, f: ReportFilter, key_of: Any, acc: Any) -> None:
    """Time in the wrong queue, charged to the institution that held the question."""
    holder = col(TimelineEntry.data)["from_institution_id"].as_integer()
    query = (
        sa.select(
            col(TimelineEntry.data),
            col(Question.page_id),
            col(Question.created_at),
            col(Institution.id),
            col(Institution.sector),
            col(Territory.path),
        )
        .join(Question, col(Question.id) == col(TimelineEntry.question_id))
        .join(Institution, col(Institution.id) == holder)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(
            col(TimelineEntry.kind) == "transferred",
            col(Question.created_at) >= f.start,
            col(Question.created_at) < f.end,
            *visible_conditions(session, user, f, holder),
        )
    )
    for data, page_id, created, inst_id, sector, path in session.execute(query):
        row = acc(key_of(inst_id, page_id, created, str(sector), path)).row
        row.transferred_out += 1
        row.wrong_queue_wall_minutes += float(data.get("held_wall_minutes") or 0.0)
        row.wrong_queue_working_minutes += float(data.get("held_working_minutes") or 0.0)
