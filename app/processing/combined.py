"""PostgreSQL: all the writes of one event in one round trip.

A new question is five INSERTs (question, message, timeline, clocks, outbox) and a
page's native reply up to five writes (message, timeline, clocks, question, outbox).
Each waits for the database on its own, and on a loaded machine a round trip to
PostgreSQL costs more than everything Python does for the event. Here they go as
one statement of data-modifying CTEs, the rows of each table as one JSON parameter:

    WITH w0 AS (INSERT INTO "question" (...) SELECT ... FROM
                json_populate_recordset(NULL::"question", CAST(:w0 AS json))),
         w1 AS (INSERT INTO "message" ...),
         w2 AS (UPDATE "sla_clock" AS t SET ... FROM json_populate_recordset(...) AS v
                WHERE t."id" = v."id")
    SELECT 1

A few parameters and a short text: psycopg keeps the statement prepared (it would
re-parse a statement of more than 50 parameters at every execution) and PostgreSQL
plans it once. The ids the rows refer to are known before: a new row's id is taken
from its sequence by the statement that reads what the event needs (`nextval`), so
no row waits for another's RETURNING; PostgreSQL checks foreign keys at the end of
the statement, so a message may refer to the question inserted beside it.

The rows are the column values the separate INSERTs would write, defaults included
(`_complete` adds the Python-side column defaults as SQLAlchemy's INSERT would);
PostgreSQL casts each JSON value to its column's type. SQLite has no data-modifying
CTEs: there the same writes are an `executemany` a table and shape, whose round trips
cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from app.core.bulk import insert_sql, rows_json, sqlite_many, update_sql

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


def _cached(shape: tuple[Any, ...], build: Any) -> Any:
    statement = _CACHE.get(shape)
    if statement is None:
        statement = build()
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[shape] = statement
    return statement


_ORDER: dict[str, int] = {}


def _sqlite_order(part: tuple[str, sa.Table, str, list[dict[str, Any]]]) -> tuple[int, int]:
    kind, table = part[0], part[1]
    if not _ORDER:
        _ORDER.update({t.name: n for n, t in enumerate(table.metadata.sorted_tables)})
    return (0, _ORDER[table.name]) if kind == "insert" else (1, 0)


class Writes:
    """The writes of one event, made by `send`: one statement on PostgreSQL, one per
    table on SQLite. Inserts of rows, and updates of rows by their key; rows of one
    table that set the same columns go together."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, sa.Table, str, list[dict[str, Any]]]] = []

    def _add(self, kind: str, table: sa.Table, key: str, row: dict[str, Any]) -> None:
        for part_kind, part_table, part_key, rows in self._parts:
            if (
                part_kind == kind
                and part_table is table
                and part_key == key
                and rows[0].keys() == row.keys()
            ):
                rows.append(row)
                return
        self._parts.append((kind, table, key, [row]))

    def insert(self, table: sa.Table, rows: Sequence[Row]) -> None:
        """Insert `rows` into `table` (in this order, after those inserted before)."""
        for row in rows:
            self._add("insert", table, "", dict(row))

    def update(self, table: sa.Table, key: str, row: Row) -> None:
        """Set the columns of `row` on the row of `table` whose `key` is `row[key]`."""
        self._add("update", table, key, dict(row))

    def extend(self, other: Writes) -> None:
        """Add the writes of `other` after these (rows of the same shape join)."""
        for kind, table, key, rows in other._parts:
            for row in rows:
                self._add(kind, table, key, row)

    def __bool__(self) -> bool:
        return bool(self._parts)

    def inserted(self, table: sa.Table) -> Iterator[dict[str, Any]]:
        """The rows to insert into `table`, as held (the same dicts: `extend` keeps them,
        so a change to one is what `send` writes; keep each row's keys)."""
        for kind, part_table, _, rows in self._parts:
            if kind == "insert" and part_table is table:
                yield from rows

    def send(self, db: sa.Connection) -> None:
        if not self._parts:
            return
        if db.dialect.name != "postgresql":
            # SQLite checks a foreign key at each row: a batch's held rows go in the
            # order of the tables' dependencies (a question before its messages), then
            # the updates (only ever of rows in the database, `held.Held`).
            for kind, table, key, rows in sorted(self._parts, key=_sqlite_order):
                if kind == "insert":
                    rows = [_complete(table, r) for r in rows]
                sqlite_many(db, kind, table, key, rows)
            return
        # In one order whatever order the events came in (all the CTEs see the same
        # snapshot, and foreign keys are checked at the statement's end): a batch's
        # writes then come in a few dozen statement texts instead of a hundred, each
        # prepared once per connection and not parsed and planned again.
        parts = sorted(
            (
                (
                    kind,
                    table,
                    key,
                    [_complete(table, r) for r in rows] if kind == "insert" else rows,
                )
                for kind, table, key, rows in self._parts
            ),
            key=lambda p: (p[0], p[1].name, p[2], tuple(p[3][0])),
        )
        shape = tuple((kind, table.name, key, tuple(rows[0])) for kind, table, key, rows in parts)

        def build() -> sa.TextClause:
            ctes = [
                f"w{n} AS ("
                + (
                    insert_sql(table, list(rows[0]), f"w{n}")
                    if kind == "insert"
                    else update_sql(table, key, list(rows[0]), f"w{n}")
                )
                + ")"
                for n, (kind, table, key, rows) in enumerate(parts)
            ]
            return sa.text("WITH " + ", ".join(ctes) + " SELECT 1")

        statement = _cached(("writes", *shape), build)
        db.execute(statement, {f"w{n}": rows_json(p[3]) for n, p in enumerate(parts)})
