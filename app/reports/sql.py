"""SQL building blocks the figures share, written once for SQLite and PostgreSQL.

- Percentiles: PostgreSQL's `percentile_cont`; on SQLite the same interpolation
  between closest ranks, ranking only the values near the ranks wanted (counted per
  bucket of their size first), so neither database sends rows to Python.
- Local dates of an instant (days and weeks in a territory's zone): PostgreSQL's
  `timezone()`; SQLite's `date()` shifted by the zone's offset at the period's start
  (Russia keeps no daylight saving time since 2014, so one offset holds all year).
- The child of a territory that a territory path belongs to, for ranking children.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


# Percentiles found, per process: {(database, statement, parameters): (mark, found)}.
_FOUND: OrderedDict[tuple[Any, ...], tuple[Any, dict[str, dict[str, list[float | None]]]]] = (
    OrderedDict()
)
_FOUND_SIZE = 256
_FOUND_LOCK = threading.Lock()


def clear_cache() -> None:
    """Drop the percentiles kept (a new application starts empty)."""
    with _FOUND_LOCK:
        _FOUND.clear()


def percentiles(
    session: Session,
    source: sa.Subquery,
    measures: Sequence[str],
    fractions: Sequence[tuple[int, int]] = (MEDIAN, P90),
    *,
    mark: Any = None,
    grouped: bool = True,
) -> dict[str, dict[str, list[float | None]]]:
    """Interpolated percentiles (exactly like `percentile_cont`) of each measure column
    of `source` per its `key` column: {key: {measure: [value per fraction]}}.

    `source` has a `key` column and the measure columns; NULL measures are skipped;
    without `grouped` its key is one constant (nothing is grouped by it). With a `mark` (something that changes whenever any value of `source` may have), the
    answer is kept per process and given again while the mark holds: sorting a region's
    quarter of response times is most of a dashboard's time, and a closed period's
    rarely change.
    """
    if mark is None:
        return _percentiles(session, source, measures, fractions, grouped)
    bind = session.get_bind()
    compiled = sa.select(source).compile(bind)
    params = tuple(
        sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in compiled.params.items())
    )
    key = (str(bind.engine.url), str(compiled), params, tuple(measures), tuple(fractions))
    with _FOUND_LOCK:
        kept = _FOUND.get(key)
        if kept is not None and kept[0] == mark:
            _FOUND.move_to_end(key)
            return kept[1]
    found = _percentiles(session, source, measures, fractions, grouped)
    with _FOUND_LOCK:
        _FOUND[key] = (mark, found)
        _FOUND.move_to_end(key)
        while len(_FOUND) > _FOUND_SIZE:
            _FOUND.popitem(last=False)
    return found


def _percentiles(
    session: Session,
    source: sa.Subquery,
    measures: Sequence[str],
    fractions: Sequence[tuple[int, int]],
    grouped: bool,
) -> dict[str, dict[str, list[float | None]]]:
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
        for key, values in _sqlite_percentiles(session, source, m, fractions, grouped).items():
            out.setdefault(key, {})[m] = values
    for found in out.values():
        for m in measures:
            found.setdefault(m, [None] * len(fractions))
    return out


# Values are counted in buckets of about 6 % of their size (16 per factor of e): a
# region's quarter of response times falls into ~150 buckets per group.
BUCKETS_PER_E = 16
_NO_KEY = "\x01"  # stands for a NULL key (PostgreSQL text holds no NUL)


def _sqlite_percentiles(
    session: Session,
    source: sa.Subquery,
    measure: str,
    fractions: Sequence[tuple[int, int]],
    grouped: bool = True,
) -> dict[str, list[float | None]]:
    """SQLite's `percentile_cont`, in one statement that ranks few rows: the values are
    counted per bucket of their size, running sums over the buckets find the ones that
    hold the ranks wanted, and only those buckets' values are ranked (window functions
    over the whole set sorted and scanned it twice more: 2-3× slower at a region's
    quarter). Exact: the same values at the same ranks as a full sort. Without
    `grouped` (one key, "total") nothing is grouped or partitioned by the key."""
    value = source.c[measure]
    # An integer (truncated: the values are positive) sorts faster than floor()'s real.
    bucket = sa.case(
        (value > 0, sa.cast(sa.func.ln(value + 1.0) * BUCKETS_PER_E, sa.Integer)), else_=-1
    )
    key = sa.func.coalesce(sa.cast(source.c.key, sa.String), _NO_KEY)
    s = (
        sa.select(key.label("key"), value.label("v"), bucket.label("b"))
        .where(value.is_not(None))
        .cte("s")
    )

    def by(table: Any, *more: Any) -> list[Any]:
        """The key (when grouped) and `more`: what groups, partitions and joins."""
        return [table.c.key, *more] if grouped else list(more)

    h = (
        sa.select(sa.func.max(s.c.key).label("key"), s.c.b, sa.func.count().label("n"))
        .group_by(*by(s, s.c.b))
        .cte("h")
    )
    running = sa.func.sum(h.c.n).over(partition_by=by(h) or None, order_by=h.c.b)
    c = sa.select(
        h.c.key,
        h.c.b,
        h.c.n,
        sa.cast(running - h.c.n, sa.BigInteger).label("below"),
        sa.cast(sa.func.sum(h.c.n).over(partition_by=by(h) or None), sa.BigInteger).label("total"),
    ).cte("c")

    def rank(total: Any, num: int, den: int) -> Any:
        # k = (n-1)*p in integers: its floor, without floating-point surprises.
        return (total - 1) * num // den

    wanted = []
    for num, den in fractions:
        lo = rank(c.c.total, num, den)
        for r in (lo, lo + 1):
            wanted.append(sa.and_(c.c.below <= r, r < c.c.below + c.c.n))
    t = sa.select(c.c.key, c.c.b, c.c.below, c.c.total).where(sa.or_(*wanted)).cte("t")
    # The values of the wanted buckets first (one pass; an IN probes a list built once),
    # then their buckets' place: joined directly, SQLite scanned every value per bucket.
    near = (
        sa.select(s.c.key, s.c.b, s.c.v)
        .where(sa.tuple_(*by(s, s.c.b)).in_(sa.select(*by(t, t.c.b))))
        .cte("near")
        .prefix_with("MATERIALIZED")
    )
    ranked = (
        sa.select(
            near.c.key,
            near.c.v,
            t.c.total,
            (
                t.c.below
                + sa.func.row_number().over(partition_by=by(near, near.c.b), order_by=near.c.v)
                - 1
            ).label("i"),
        )
        .join(t, sa.and_(*(a == b for a, b in zip(by(t, t.c.b), by(near, near.c.b), strict=True))))
        .subquery()
    )
    i, n, v = ranked.c.i, ranked.c.total, ranked.c.v
    columns: list[Any] = []
    for num, den in fractions:
        lo = rank(n, num, den)
        columns.append(sa.func.max(sa.case((i == lo, v))))
        columns.append(sa.func.max(sa.case((i == lo + 1, v))))
    query = sa.select(sa.func.max(ranked.c.key), n, *columns).group_by(*by(ranked), n)
    out: dict[str, list[float | None]] = {}
    for row in session.execute(query):
        total = int(row[1])
        values: list[float | None] = []
        for j, (num, den) in enumerate(fractions):
            lo_v, hi_v = row[2 + 2 * j : 4 + 2 * j]
            if lo_v is None:
                values.append(None)
                continue
            hi = lo_v if hi_v is None else hi_v
            frac = ((total - 1) * num % den) / den
            values.append(float(lo_v) + (float(hi) - float(lo_v)) * frac)
        out["None" if row[0] == _NO_KEY else str(row[0])] = values
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
