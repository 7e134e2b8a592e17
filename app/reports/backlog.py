"""The open backlog now: open questions per group, overdue ones, and their ages."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.questions.models import OPEN_STATUSES, Question
from app.reports.population import (
    ReportFilter,
    group_keyer,
    group_names,
    report_scope,
    visible_conditions,
)
from app.sla import service as sla_service

_OPEN = [str(s) for s in OPEN_STATUSES]

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
    scope = report_scope(session, f)
    key_of = group_keyer(session, f, scope)
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
            *visible_conditions(session, user, f, col(Question.institution_id)),
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
    names = group_names(session, group_by, set(rows))
    for row in rows.values():
        row.name = names.get(row.key, row.key)
    chronological = group_by in ("day", "week")
    return sorted(rows.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key))
