"""PostgreSQL: the writes of one event in one round trip.

A new question is five INSERTs (question, message, timeline, clocks, outbox) and a
page's native reply up to five writes (message, timeline, clocks, question, outbox).
Each waits for the database on its own, and on a loaded machine a round trip to
PostgreSQL costs more than everything Python does for the event. Here they go as
one statement of data-modifying CTEs: `WITH i0_ AS (INSERT INTO question ... SELECT
...), i1_ AS (INSERT INTO message ... SELECT ...), u0 AS (UPDATE ...) SELECT 1`. The
ids the rows refer to are known before: a new row's id is taken from its sequence by
the statement that reads what the event needs (`nextval`), so the rows do not depend
on each other's RETURNING. PostgreSQL checks foreign keys at the end of the
statement, so a message may refer to the question inserted beside it.

The rows are the column values the separate INSERTs would write, defaults included
(`_complete` adds the Python-side column defaults as SQLAlchemy's INSERT would).
Statements are built once per shape (which columns, how many rows of each table)
and cached. SQLite has no data-modifying CTEs: there the same writes are separate
statements, whose round trips cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_MAX = 512
_DEFAULTED: dict[str, list[tuple[str, Any]]] = {}

Row = Mapping[str, Any]


def _complete(table: sa.Table, row: Row) -> dict[str, Any]:
    """`row` with the Python-side defaults of the columns it leaves out, as an INSERT of
    SQLAlchemy would add them."""
    defaulted = _DEFAULTED.get(table.name)
    if defaulted is None:
        defaulted = _DEFAULTED[table.name] = [
            (column.name, column.default)
            for column in table.columns
            if not column.primary_key and isinstance(column.default, sa.ColumnDefault)
        ]
    out = dict(row)
    for name, default in defaulted:
        if name not in out:
            out[name] = default.arg(None) if default.is_callable else default.arg
    return out


def _bind(table: sa.Table, prefix: str, name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(f"{prefix}_{name}", type_=table.c[name].type)


def _rows_cte(table: sa.Table, prefix: str, names: Sequence[str], count: int) -> sa.CTE:
    """INSERT of `count` rows of `names` (bound as `{prefix}{n}_{name}`) as a CTE."""
    # Cast: in a select list a parameter has no column to take its type from (a float or
    # boolean would be sent as text).
    selects = [
        sa.select(
            *(sa.cast(_bind(table, f"{prefix}{n}", name), table.c[name].type) for name in names)
        )
        for n in range(count)
    ]
    source: Any = selects[0] if count == 1 else sa.union_all(*selects)
    return sa.insert(table).from_select(list(names), source, include_defaults=False).cte(prefix)


def _update_cte(table: sa.Table, prefix: str, key: str, names: Sequence[str]) -> sa.CTE:
    """UPDATE of one row (by `key`) setting `names`, bound as `{prefix}_{name}`, as a CTE."""
    return (
        sa.update(table)
        .where(table.c[key] == _bind(table, prefix, key))
        .values({name: _bind(table, prefix, name) for name in names})
        .cte(prefix)
    )


def _rows_params(prefix: str, rows: Sequence[Row], names: Sequence[str]) -> dict[str, Any]:
    return {f"{prefix}{n}_{name}": row[name] for n, row in enumerate(rows) for name in names}


def _cached(shape: tuple[Any, ...], build: Any) -> Any:
    statement = _CACHE.get(shape)
    if statement is None:
        statement = build()
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[shape] = statement
    return statement


def _postgresql(db: sa.Connection) -> bool:
    return db.dialect.name == "postgresql"


class Writes:
    """The writes of one event, made by `send`: one statement on PostgreSQL, one per
    table on SQLite. Inserts of rows that share their columns; updates of single rows
    by their key."""

    def __init__(self) -> None:
        self._inserts: list[tuple[sa.Table, list[dict[str, Any]]]] = []
        self._updates: list[tuple[sa.Table, str, dict[str, Any]]] = []

    def insert(self, table: sa.Table, rows: Sequence[Row]) -> None:
        """Insert `rows` into `table` (a run of rows with other columns goes apart)."""
        for row in rows:
            last = self._inserts[-1] if self._inserts else None
            if last is not None and last[0] is table and last[1][0].keys() == row.keys():
                last[1].append(dict(row))
            else:
                self._inserts.append((table, [dict(row)]))

    def update(self, table: sa.Table, key: str, row: Row) -> None:
        """Set the columns of `row` on the row of `table` whose `key` is `row[key]`."""
        self._updates.append((table, key, dict(row)))

    def send(self, db: sa.Connection) -> None:
        if not _postgresql(db):
            for table, rows in self._inserts:
                db.execute(_cached(("insert", table.name), lambda t=table: sa.insert(t)), rows)
            for table, key, row in self._updates:
                statement = _cached(
                    ("update", table.name, key, tuple(row)),
                    lambda t=table, k=key, r=row: (
                        sa.update(t)
                        .where(t.c[k] == sa.bindparam(f"key_{k}"))
                        .values({name: sa.bindparam(name) for name in r if name != k})
                    ),
                )
                db.execute(statement, {**row, f"key_{key}": row[key]})
            return
        inserts = []
        for table, rows in self._inserts:
            completed = [_complete(table, r) for r in rows]
            inserts.append((table, tuple(completed[0]), completed))
        shape = (
            "writes",
            *((t.name, names, len(r)) for t, names, r in inserts),
            *((t.name, key, tuple(row)) for t, key, row in self._updates),
        )
        if len(shape) == 1:
            return
        updates = self._updates

        def build() -> Any:
            ctes = [
                _rows_cte(t, f"i{n}_", names, len(r)) for n, (t, names, r) in enumerate(inserts)
            ]
            ctes += [
                _update_cte(t, f"u{n}", key, [name for name in row if name != key])
                for n, (t, key, row) in enumerate(updates)
            ]
            return sa.select(sa.literal(1)).add_cte(*ctes)

        statement = _cached(shape, build)
        params: dict[str, Any] = {}
        for n, (_t, names, rows) in enumerate(inserts):
            params.update(_rows_params(f"i{n}_", rows, names))
        for n, (_t, _key, row) in enumerate(updates):
            params.update({f"u{n}_{name}": value for name, value in row.items()})
        db.execute(statement, params)
