"""SQL building blocks the figures share, written once for SQLite and PostgreSQL.

- Local dates of an instant (days and weeks in a territory's zone): PostgreSQL's
  `timezone()`; SQLite's `date()` shifted by the zone's offset at the period's start
  (Russia keeps no daylight saving time since 2014, so one offset holds all year).
- The child of a territory that a territory path belongs to, for ranking children.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def local_day(session: Session, column: Any, timezone: str, at: datetime) -> Any:
    """The local date ('YYYY-MM-DD') of an instant column in the zone `timezone`."""
    if dialect(session) == "postgresql":
        return sa.func.to_char(sa.func.timezone(timezone, column), "YYYY-MM-DD")
    return sa.func.date(column, _shift(timezone, at))


def local_week(session: Session, column: Any, timezone: str, at: datetime) -> Any:
    """The local date of the Monday that starts the ISO week of an instant column."""
    if dialect(session) == "postgresql":
        local = sa.func.timezone(timezone, column)
        return sa.func.to_char(sa.func.date_trunc("week", local), "YYYY-MM-DD")
    # 'weekday 0' moves forward to Sunday (or stays on it); six days back is Monday.
    return sa.func.date(column, _shift(timezone, at), "weekday 0", "-6 days")


def week_of_day(session: Session, day: Any) -> Any:
    """The date of the Monday that starts the ISO week of a date column (a date on
    PostgreSQL: formatting every row's took longer than the grouping; text on SQLite)."""
    if dialect(session) == "postgresql":
        return sa.cast(sa.func.date_trunc("week", day), sa.Date)
    return sa.func.date(day, "weekday 0", "-6 days")


def _shift(timezone: str, at: datetime) -> str:
    offset = at.astimezone(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    return f"{int(offset.total_seconds() // 60):+d} minutes"


def child_of(session: Session, path: Any, root_path: str, root_id: int) -> Any:
    """The id (as text) of the child of the territory `root_path` that a territory
    `path` lies in; the root's own id for the root itself. Paths are "/1/4/9/"."""
    start = len(root_path) + 1
    rest = sa.func.substr(path, start)
    find = sa.func.strpos if dialect(session) == "postgresql" else sa.func.instr
    child = sa.func.substr(path, start, find(rest, "/") - 1)
    return sa.case((path == root_path, sa.literal(str(root_id))), else_=child)
