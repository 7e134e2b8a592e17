"""SQL building blocks the figures share, written once for SQLite and PostgreSQL.

- Percentiles: PostgreSQL's `percentile_cont`; on SQLite the same interpolation
  between closest ranks from window functions (`row_number`, `count`), so neither
  database sends rows to Python to be sorted there.
- Local dates of an instant (days and weeks in a territory's zone): PostgreSQL's
  `timezone()`; SQLite's `date()` shifted by the zone's offset at the period's start
  (Russia keeps no daylight saving time since 2014, so one offset holds all year).
- The child of a territory that a territory path belongs to, for ranking children.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

# A percentile as an exact fraction (numerator, denominator): integer arithmetic on
# SQLite finds the ranks without floating-point surprises ((n-1)*0.9).
MEDIAN = (1, 2)
P90 = (9, 10)


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def percentiles(
    session: Session,
    source: sa.Subquery,
    measures: Sequence[str],
    fractions: Sequence[tuple[int, int]] = (MEDIAN, P90),
) -> dict[str, dict[str, list[float | None]]]:
    """Interpolated percentiles (like `percentile_cont`) of each measure column of
    `source` per its `key` column: {key: {measure: [value per fraction]}}.

    `source` has a `key` column and the measure columns; NULL measures are skipped.
    """
    out: dict[str, dict[str, list[float | None]]] = {}
    if dialect(session) == "postgresql":
        columns = [
            sa.func.percentile_cont(num / den).within_group(source.c[m].asc())
            for m in measures
            for num, den in fractions
        ]
        for row in session.execute(sa.select(source.c.key, *columns).group_by(source.c.key)):
            values = list(row[1:])
            out[str(row[0])] = {
                m: [_float(v) for v in values[i * len(fractions) : (i + 1) * len(fractions)]]
                for i, m in enumerate(measures)
            }
        return out
    for m in measures:
        for key, values in _sqlite_percentiles(session, source, m, fractions).items():
            out.setdefault(key, {})[m] = values
    for found in out.values():
        for m in measures:
            found.setdefault(m, [None] * len(fractions))
    return out


def _sqlite_percentiles(
    session: Session, source: sa.Subquery, measure: str, fractions: Sequence[tuple[int, int]]
) -> dict[str, list[float | None]]:
    value = source.c[measure]
    ranked = (
        sa.select(
            source.c.key.label("key"),
            value.label("v"),
            (sa.func.row_number().over(partition_by=source.c.key, order_by=value) - 1).label("i"),
            sa.func.count().over(partition_by=source.c.key).label("n"),
        )
        .where(value.is_not(None))
        .subquery()
    )
    i, n, v = ranked.c.i, ranked.c.n, ranked.c.v
    columns: list[Any] = []
    for num, den in fractions:
        # k = (n-1)*p; the value at floor(k), the next one, and k's fractional part.
        lo: Any = sa.literal_column(f"((n - 1) * {num} / {den})")
        columns.append(sa.func.max(sa.case((i == lo, v))))
        columns.append(sa.func.max(sa.case((i == lo + 1, v))))
        columns.append(sa.literal_column(f"(((n - 1) * {num}) % {den}) * 1.0 / {den}"))
    query = sa.select(ranked.c.key, *columns).group_by(ranked.c.key, n)
    out: dict[str, list[float | None]] = {}
    for row in session.execute(query):
        values: list[float | None] = []
        for j in range(len(fractions)):
            lo_v, hi_v, frac = row[1 + 3 * j : 4 + 3 * j]
            if lo_v is None:
                values.append(None)
                continue
            hi = lo_v if hi_v is None else hi_v
            values.append(float(lo_v) + (float(hi) - float(lo_v)) * float(frac))
        out[str(row[0])] = values
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


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
    """The date ('YYYY-MM-DD') of the Monday that starts the ISO week of a date column."""
    if dialect(session) == "postgresql":
        return sa.func.to_char(sa.func.date_trunc("week", day), "YYYY-MM-DD")
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
