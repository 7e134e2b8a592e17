"""Many rows in one PostgreSQL statement whose text does not depend on their number.

The rows go as one JSON parameter, which PostgreSQL turns into records of the table's
type (`json_populate_recordset`, each value cast to its column's type):

    INSERT INTO "notification" ("user_id", ...) SELECT "user_id", ... FROM
        json_populate_recordset(NULL::"notification", CAST(:rows AS json))

The statement's text is the same for 3 rows or 300, so psycopg keeps it prepared and
PostgreSQL plans it once. SQLAlchemy's multi-row VALUES ("insertmanyvalues") renders a
new text of a parameter per value for each count of rows, which psycopg then parses
again: at a sweep's 130 alerts that parsing was most of the sweep's CPU. On SQLite the
rows go by `executemany`, whose statements cost no round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.state import InstanceState

Row = Mapping[str, Any]

_STATEMENTS: dict[tuple[Any, ...], sa.TextClause] = {}


def rows_json(rows: Sequence[Row]) -> str:
    """The rows as one JSON text, by orjson: a third of `json.dumps`'s CPU for a
    batch's rows (84 against 236 µs for 20 messages). Times are orjson's own RFC 3339
    (a naive one is UTC, as every time here is): through a Python `default` they cost
    six times as much (298 against 50 µs for 100 rows of three times each)."""
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def insert_sql(table: sa.Table, names: Sequence[str], param: str) -> str:
    """INSERT of the rows of the JSON parameter `param` into these columns."""
    columns = ", ".join(quoted(name) for name in names)
    return (
        f"INSERT INTO {quoted(table.name)} ({columns}) SELECT {columns} FROM "
        f"json_populate_recordset(NULL::{quoted(table.name)}, CAST(:{param} AS json))"
    )


def update_sql(table: sa.Table, key: str, names: Sequence[str], param: str) -> str:
    """UPDATE of the columns `names` of the rows whose `key` is in the JSON parameter.

    The rows to update are found by `key = ANY(the keys of the JSON)`, an index scan.
    Joined only to the JSON's records, which PostgreSQL guesses at 100 whatever their
    number, the table was read whole (a hash join) as long as it was of a few thousand
    rows: 3.2 of the 3.6 ms of updating 4 of 6,000 clocks."""
    sets = ", ".join(f"{quoted(name)} = v.{quoted(name)}" for name in names if name != key)
    k = quoted(key)
    key_type = table.c[key].type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return (
        f"UPDATE {quoted(table.name)} AS t SET {sets} FROM "
        f"json_populate_recordset(NULL::{quoted(table.name)}, CAST(:{param} AS json)) AS v "
        f"WHERE t.{k} = v.{k} AND t.{k} = ANY(ARRAY(SELECT (e ->> {_literal(key)})::{key_type} "
        f"FROM json_array_elements(CAST(:{param} AS json)) AS e))"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SQLITE: dict[tuple[Any, ...], tuple[str, tuple[str, ...], list[Any]]] = {}


def sqlite_many(
    db: sa.Connection, kind: str, table: sa.Table, key: str, rows: Sequence[Row]
) -> None:
    """SQLite: `rows` (all with the same keys) inserted (`kind` "insert") or set on the
    rows with their `key` ("update"), by the driver's `executemany` with each value
    through its column type's bind processor, as SQLAlchemy applies it. SQLAlchemy's own
    handling of an executemany's parameters (a dict a row, each value through its
    processor by name) cost as much as SQLite's work on them."""
    if not rows:
        return
    names = tuple(rows[0])
    shape = (kind, table.name, key, names)
    found = _SQLITE.get(shape)
    if found is None:
        if kind == "insert":
            order = names
            marks = ", ".join("?" for _ in order)
            columns = ", ".join(quoted(n) for n in order)
            sql = f"INSERT INTO {quoted(table.name)} ({columns}) VALUES ({marks})"
        else:
            order = (*(n for n in names if n != key), key)
            sets = ", ".join(f"{quoted(n)} = ?" for n in order[:-1])
            sql = f"UPDATE {quoted(table.name)} SET {sets} WHERE {quoted(key)} = ?"
        processors = [table.c[n].type._cached_bind_processor(db.dialect) for n in order]
        found = _SQLITE[shape] = (sql, order, processors)
    sql, order, processors = found
    db.exec_driver_sql(
        sql,
        [
            tuple(
                row[name] if process is None else process(row[name])
                for name, process in zip(order, processors, strict=True)
            )
            for row in rows
        ],
    )


def insert_many(
    db: sa.Connection,
    table: sa.Table,
    rows: Sequence[Row],
    *,
    skip_conflicts: bool = False,
    returning: str | None = None,
    update_on: tuple[str, ...] = (),
) -> list[Any]:
    """Insert `rows` (all with the same keys); `skip_conflicts`: leave out those that
    conflict with a unique key (ON CONFLICT DO NOTHING); `update_on`: the columns of a
    unique key, where a row that conflicts updates the stored one's other columns
    instead (no two rows of one call may share that key). Returns the `returning`
    column of the rows inserted (an empty list without `returning`)."""
    if not rows:
        return []
    names = tuple(rows[0])
    updated = [name for name in names if name not in update_on]
    if db.dialect.name != "postgresql":
        statement: Any = sqlite_insert(table)
        if skip_conflicts:
            statement = statement.on_conflict_do_nothing()
        elif update_on:
            statement = statement.on_conflict_do_update(
                index_elements=list(update_on),
                set_={name: statement.excluded[name] for name in updated},
            )
        if returning is None:
            db.execute(statement, list(rows))
            return []
        return list(db.execute(statement.returning(table.c[returning]), list(rows)).scalars())
    shape = (table.name, names, skip_conflicts, returning, update_on)
    text = _STATEMENTS.get(shape)
    if text is None:
        sql = insert_sql(table, names, "rows")
        if skip_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        elif update_on:
            sets = ", ".join(f"{quoted(n)} = EXCLUDED.{quoted(n)}" for n in updated)
            sql += f" ON CONFLICT ({', '.join(quoted(n) for n in update_on)}) DO UPDATE SET {sets}"
        if returning is not None:
            sql += f" RETURNING {quoted(returning)}"
        text = _STATEMENTS[shape] = sa.text(sql)
    result = db.execute(text, {"rows": rows_json(rows)})
    return list(result.scalars()) if returning is not None else []


def among(db: Session, column: Any, values: Iterable[Any]) -> Any:
    """`column IN values`, whose text does not depend on how many values there are: on
    PostgreSQL `column = ANY(:array)`, one parameter. SQLAlchemy renders an IN list as a
    parameter per value, a new text for each count, which psycopg parses again and
    PostgreSQL plans again (a twentieth of a worker's CPU, the reports' fold and the
    SLA sweep's reads). On SQLite an IN list, whose statements cost no round trip."""
    values = list(values)
    if db.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))


def pairs_among(db: Session, a: Any, b: Any, pairs: Iterable[Any]) -> Any:
    """`(a, b) IN pairs`, as `among`: on PostgreSQL against two arrays unnested side by
    side, two parameters whatever the number of pairs."""
    pairs = list(pairs)
    if db.get_bind().dialect.name != "postgresql":
        return sa.tuple_(a, b).in_(pairs)
    firsts = sa.bindparam(None, [p[0] for p in pairs], type_=postgresql.ARRAY(a.type))
    seconds = sa.bindparam(None, [p[1] for p in pairs], type_=postgresql.ARRAY(b.type))
    both = sa.select(sa.func.unnest(firsts), sa.func.unnest(seconds))
    return sa.tuple_(a, b).in_(both)


def update_many(
    db: sa.Connection,
    table: sa.Table,
    rows: Sequence[Row],
    *,
    only_if: Row | None = None,
    compare: tuple[str, ...] = (),
) -> None:
    """Set the columns of `rows` (all with the same keys, `id` among them) on the rows
    with their ids: one statement on PostgreSQL (the rows as one JSON parameter,
    `update_sql`), an `executemany` on SQLite. Only where the stored row still has the
    values of `only_if`, and the row's own values of the columns in `compare`, which are
    compared, not set (an outbox item still in the hands of the sender that claimed it:
    its status, and the attempts of that claim)."""
    if not rows:
        return
    only_if = only_if or {}
    keys = tuple(rows[0])
    names = tuple(k for k in keys if k not in compare)
    if db.dialect.name != "postgresql" and not only_if and not compare:
        sqlite_many(db, "update", table, "id", rows)
        return
    if db.dialect.name != "postgresql":
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .where(*(table.c[n] == value for n, value in only_if.items()))
            .where(*(table.c[n] == sa.bindparam(f"was_{n}") for n in compare))
            .values({n: sa.bindparam(f"v_{n}") for n in names if n != "id"})
        )
        db.execute(
            statement,
            [
                {
                    "row_id": r["id"],
                    **{f"v_{n}": r[n] for n in names if n != "id"},
                    **{f"was_{n}": r[n] for n in compare},
                }
                for r in rows
            ],
        )
        return
    shape = ("update", table.name, keys, tuple(only_if), compare)
    text = _STATEMENTS.get(shape)
    if text is None:
        sql = update_sql(table, "id", names, "rows")
        sql += "".join(f" AND t.{quoted(n)} = :only_{n}" for n in only_if)
        sql += "".join(f" AND t.{quoted(n)} = v.{quoted(n)}" for n in compare)
        text = _STATEMENTS[shape] = sa.text(sql)
    db.execute(text, {"rows": rows_json(rows), **{f"only_{n}": v for n, v in only_if.items()}})


_COLUMN_KEYS: dict[Any, frozenset[str]] = {}


def _changed_columns(state: InstanceState[Any]) -> dict[str, Any]:
    """The object's column attributes whose value differs from the loaded one, as the
    ORM's history would tell (`is_equal`, the column type's comparison), read from the
    state's own record of the attributes that were set. A relationship's changes are the
    ORM's to write. (`state.attrs[...].history` builds an accessor for every attribute of
    every object: a quarter of the SLA sweep's CPU.)"""
    committed = state.committed_state
    if not committed:
        return {}
    mapper = state.mapper
    keys = _COLUMN_KEYS.get(mapper)
    if keys is None:
        keys = _COLUMN_KEYS[mapper] = frozenset(c.key for c in mapper.column_attrs)
    current = state.dict
    manager = state.manager
    return {
        key: current[key]
        for key, original in committed.items()
        if key in keys and key in current and not manager[key].impl.is_equal(current[key], original)
    }


def write_changes(session: Session, objects: Iterable[Any]) -> int:
    """Write what changed in these ORM objects (persistent, keyed by `id`, attributes
    named as their columns, as in every model here) with one
    UPDATE per table and set of changed columns, and leave them clean for the session's
    next flush; returns how many objects were written.

    The ORM's flush sends one UPDATE per row (an `executemany`); on PostgreSQL each of
    them also runs the tables' statement triggers (the report marks) once. Here, on
    PostgreSQL, the rows go as one JSON parameter (`update_sql`); on SQLite, by
    `executemany`."""
    groups: dict[tuple[sa.Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    written = []
    for obj in objects:
        state = sa.inspect(obj)
        if not state.persistent:
            continue
        changed = _changed_columns(state)
        if not changed:
            continue
        table: sa.Table = state.mapper.local_table
        names = tuple(sorted(changed))
        groups.setdefault((table, names), []).append({"id": state.identity[0], **changed})
        written.append((obj, changed))
    db = session.connection()
    for (table, _), rows in groups.items():
        update_many(db, table, rows)
    for obj, changed in written:
        for key, value in changed.items():
            set_committed_value(obj, key, value)
    return len(written)
