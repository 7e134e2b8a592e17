"""Percentiles of response times, exactly like PostgreSQL's `percentile_cont`
(interpolated between closest ranks), computed by the database on both:
`percentile_cont` on PostgreSQL; on SQLite the values are counted per bucket of their
size and only the buckets that hold the ranks wanted are ranked. Neither sends rows
to Python.

Each is a sort of the period's values, most of a dashboard's time at a region's scale,
so an answer is kept per process under a mark of its scope and period (`figures`
passes the rollup's).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.reports.sql import dialect

# A percentile as an exact fraction (numerator, denominator): integer arithmetic on
# SQLite finds the ranks without floating-point surprises ((n-1)*0.9).
MEDIAN = (1, 2)
P90 = (9, 10)
FRACTIONS = (MEDIAN, P90)


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
    fractions: Sequence[tuple[int, int]] = FRACTIONS,
    *,
    mark: Any = None,
    grouped: bool = True,
) -> dict[str, dict[str, list[float | None]]]:
    """Interpolated percentiles (exactly like `percentile_cont`) of each measure column
    of `source` per its `key` column: {key: {measure: [value per fraction]}}.

    `source` has a `key` column and the measure columns; NULL measures are skipped;
    without `grouped` its key is one constant (nothing is grouped by it). With a `mark`
    (something that changes whenever any value of `source` may have), the answer is
    kept per process and given again while the mark holds: sorting a region's quarter
    of response times is most of a dashboard's time, and a closed period's rarely
    change.
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
