"""The open backlog now: open questions per group, overdue ones, near their deadline,
and their ages, counted by the database (GROUP BY)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from app.auth.models import User
from app.directory.models import Institution, Territory
from app.reports import fold
from app.reports.models import ReportFact
from app.reports.population import (
    ReportFilter,
    group_key,
    group_names,
    report_scope,
    row_key,
    visible_conditions,
)
from app.sla import service as sla_service

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
    # Open questions with a clock past its warning point, deadline still ahead.
    warning: int = 0
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
    sector: str | None = None,
) -> list[BacklogRow]:
    """Open questions and complaints now, per group, by age (days and weeks: creation date)."""
    f = ReportFilter(now - timedelta(days=1), now, territory_id, institution_id, group_by, sector)
    scope = report_scope(session, f, user)
    fold.current(session)
    # The open questions are found through their fact rows (a short index range), not
    # by reading the question table past every answered one.
    key = group_key(
        session,
        f,
        scope,
        institution=Institution,
        territory=Territory,
        page_id=col(ReportFact.page_id),
        created_at=col(ReportFact.created_at),
        classification=col(ReportFact.classification),
    )
    # Not overdue, every active clock is due later: warning now is its earliest
    # warning time having passed.
    warned = col(ReportFact.warn_at) <= now
    overdue = col(ReportFact.due_at) <= now
    ages: list[Any] = []
    newer: datetime | None = None
    for _, minutes in AGE_BUCKETS:
        cond: list[Any] = []
        older = None if minutes == math.inf else now - timedelta(minutes=minutes)
        if older is not None:
            cond.append(col(ReportFact.created_at) > older)
        if newer is not None:
            cond.append(col(ReportFact.created_at) <= newer)
        ages.append(sa.func.sum(sa.case((sa.and_(sa.true(), *cond), 1), else_=0)))
        newer = older
    query = (
        sa.select(
            key.label("key"),
            sa.func.count(),
            sa.func.sum(sa.case((overdue, 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(sa.not_(overdue), warned), 1), else_=0)),
            sa.func.min(col(ReportFact.created_at)),
            *ages,
        )
        .select_from(ReportFact)
        .join(Institution, col(Institution.id) == col(ReportFact.institution_id))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(
            col(ReportFact.open).is_(True),
            # Greetings and thanks left open are no debt to anyone.
            col(ReportFact.classification).in_(sla_service.ANSWERABLE),
            *visible_conditions(session, user, f, col(ReportFact.institution_id)),
        )
        .group_by(key)
    )
    rows: dict[str, BacklogRow] = {}
    for value, n, late, warning, oldest, *buckets in session.execute(query):
        k = row_key(group_by, value)
        if isinstance(oldest, str):  # SQLite hands back text through min()
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
        age = max(0.0, (now - oldest) / timedelta(minutes=1)) if oldest else None
        rows[k] = BacklogRow(
            key=k,
            name=k,
            open=int(n),
            overdue=int(late or 0),
            warning=int(warning or 0),
            oldest_wall_minutes=None if age is None else round(age, 1),
            by_age={name: int(b or 0) for (name, _), b in zip(AGE_BUCKETS, buckets, strict=True)},
        )
    names = group_names(session, group_by, set(rows))
    for row in rows.values():
        row.name = names.get(row.key, row.key)
    chronological = group_by in ("day", "week")
    return sorted(rows.values(), key=lambda r: r.key if chronological else (r.name.lower(), r.key))
