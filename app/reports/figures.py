"""SLA figures: the one module that computes them, for the API, the pages and the exports.

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
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.models import User
from app.core.errors import Invalid, NotFound
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory
from app.questions.models import (
    OPEN_STATUSES,
    DismissReason,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.sla import service as sla_service
from app.sla.models import ClockState, SlaClock, Target

GROUPS = ("institution", "page", "sector", "territory", "day", "week")
DEFAULT_TIMEZONE = "Europe/Moscow"
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
class ReportFilter:
    start: datetime
    end: datetime
    territory_id: int | None = None
    institution_id: int | None = None
    group_by: str = "institution"


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


# --- the population ------------------------------------------------------------


@dataclass
class _Scope:
    base_depth: int
    timezone: str


def _scope(session: Session, f: ReportFilter) -> _Scope:
    if f.group_by not in GROUPS:
        raise Invalid(f"group_by: одно из {', '.join(GROUPS)}", code="invalid_group_by")
    if f.end <= f.start:
        raise Invalid("Конец периода должен быть позже начала", code="invalid_period")
    timezone, depth = DEFAULT_TIMEZONE, 0
    if f.territory_id is not None:
        territory = session.get(Territory, f.territory_id)
        if territory is None:
            raise NotFound("Территория не найдена")
        timezone, depth = territory.timezone, len(_ids(territory.path))
    elif f.institution_id is not None:
        institution = session.get(Institution, f.institution_id)
        if institution is None:
            raise NotFound("Учреждение не найдено")
        territory = session.get(Territory, institution.territory_id)
        timezone = territory.timezone if territory else DEFAULT_TIMEZONE
    return _Scope(depth, timezone)


def _ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


def _where(session: Session, user: User, f: ReportFilter, institution: Any) -> list[Any]:
    """Conditions on an institution column: the caller's scope and the filters (subtrees)."""
    ids = auth_service.visible_institution_ids(user)
    conditions: list[Any] = [] if ids is None else [institution.in_(ids)]
    inst = sa.orm.aliased(Institution)
    terr = sa.orm.aliased(Territory)
    if f.territory_id is not None:
        path = session.get(Territory, f.territory_id)
        assert path is not None
        conditions.append(
            institution.in_(
                sa.select(col(inst.id))
                .join(terr, col(terr.id) == col(inst.territory_id))
                .where(col(terr.path).startswith(path.path))
            )
        )
    if f.institution_id is not None:
        root = session.get(Institution, f.institution_id)
        assert root is not None
        conditions.append(
            institution.in_(sa.select(col(inst.id)).where(col(inst.path).startswith(root.path)))
        )
    return conditions


def _keyer(session: Session, f: ReportFilter, scope: _Scope) -> Any:
    tz = ZoneInfo(scope.timezone)

    def key(institution_id: int, page_id: int, created_at: datetime, sector: str, path: str) -> str:
        if f.group_by == "institution":
            return str(institution_id)
        if f.group_by == "page":
            return str(page_id)
        if f.group_by == "sector":
            return sector
        if f.group_by == "territory":
            ids = _ids(path)
            return str(ids[scope.base_depth] if len(ids) > scope.base_depth else ids[-1])
        day = created_at.astimezone(tz).date()
        if f.group_by == "day":
            return day.isoformat()
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"

    return key


def _names(session: Session, group_by: str, keys: set[str]) -> dict[str, str]:
    numeric = [int(k) for k in keys if k.isdigit()]
    if group_by == "institution":
        rows = session.exec(select(Institution).where(col(Institution.id).in_(numeric)))
        return {str(i.id): i.name for i in rows}
    if group_by == "page":
        return {
            str(p.id): p.name for p in session.exec(select(Page).where(col(Page.id).in_(numeric)))
        }
    if group_by == "territory":
        rows_t = session.exec(select(Territory).where(col(Territory.id).in_(numeric)))
        return {str(t.id): t.name for t in rows_t}
    if group_by == "sector":
        return {
            k: SECTOR_NAMES_RU.get(Sector(k), k) if k in Sector.__members__ else k for k in keys
        }
    if group_by == "day":
        return {k: datetime.fromisoformat(k).strftime("%d.%m.%Y") for k in keys}
    out = {}
    for k in keys:
        monday = datetime.strptime(k + "-1", "%G-W%V-%u")
        sunday = monday + timedelta(days=6)
        out[k] = f"{monday:%d.%m} – {sunday:%d.%m.%Y}"
    return out


# --- the report ------------------------------------------------------------------


def sla_report(session: Session, user: User, f: ReportFilter) -> list[SlaRow]:
    """Rows of SLA figures per group, ordered by group (names, or time for days and weeks)."""
    scope = _scope(session, f)
    key_of = _keyer(session, f, scope)
    period = [col(Question.created_at) >= f.start, col(Question.created_at) < f.end]
    where = _where(session, user, f, col(Question.institution_id))
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
    names = _names(session, f.group_by, set(accs))
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
            *_where(session, user, f, holder),
        )
    )
    for data, page_id, created, inst_id, sector, path in session.execute(query):
        row = acc(key_of(inst_id, page_id, created, str(sector), path)).row
        row.transferred_out += 1
        row.wrong_queue_wall_minutes += float(data.get("held_wall_minutes") or 0.0)
        row.wrong_queue_working_minutes += float(data.get("held_working_minutes") or 0.0)


# --- backlog by age ---------------------------------------------------------------

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under_1h", 60),
    ("1h_8h", 8 * 60),
    ("8h_24h", 24 * 60),
    ("1d_3d", 3 * 24 * 60),
    ("3d_7d", 7 * 24 * 60),
    ("over_7d", math.inf),
)


class BacklogRow(BaseModel):
    key: str
    name: str
    open: int = 0
    # Open questions whose earliest deadline has passed.
    overdue: int = 0
    oldest_wall_minutes: float | None = None
    # Open questions by wall-clock age since the citizen wrote.
    by_age: dict[str, int] = {}


def backlog(
    session: Session,
    user: User,
    *,
    now: datetime,
    territory_id: int | None = None,
    institution_id: int | None = None,
    group_by: str = "institution",
) -> list[BacklogRow]:
    """Open questions and complaints now, per group, by age (days and weeks: creation date)."""
    f = ReportFilter(now - timedelta(days=1), now, territory_id, institution_id, group_by)
    scope = _scope(session, f)
    key_of = _keyer(session, f, scope)
    query = (
        sa.select(
            col(Question.institution_id),
            col(Question.page_id),
            col(Question.created_at),
            col(Question.due_at),
            col(Institution.sector),
            col(Territory.path),
        )
        .join(Institution, col(Institution.id) == col(Question.institution_id))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(
            col(Question.status).in_(_OPEN),
            # Greetings and thanks left open are no debt to anyone.
            col(Question.classification).in_(sla_service.ANSWERABLE),
            *_where(session, user, f, col(Question.institution_id)),
        )
    )
    rows: dict[str, BacklogRow] = {}
    for inst_id, page_id, created, due_at, sector, path in session.execute(query):
        key = key_of(inst_id, page_id, created, str(sector), path)
        row = rows.setdefault(
            key, BacklogRow(key=key, name=key, by_age={k: 0 for k, _ in AGE_BUCKETS})
        )
        age = max(0.0, (now - created) / timedelta(minutes=1))
        row.open += 1
        row.overdue += due_at is not None and due_at <= now
        row.oldest_wall_minutes = round(max(row.oldest_wall_minutes or 0.0, age), 1)
        bucket = next(name for name, limit in AGE_BUCKETS if age < limit)
        row.by_age[bucket] += 1
    names = _names(session, group_by, set(rows))
    for row in rows.values():
        row.name = names.get(row.key, row.key)
    chronological = group_by in ("day", "week")
    return sorted(rows.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key))
