"""The hottest reads on PostgreSQL, executed on the driver's cursor.

Processing makes one lookup per event (is this message known, which question does it
continue or answer). Through SQLAlchemy each execution of such a statement cost about
180 µs of the worker's CPU, half of it SQLAlchemy's own work per execution (the
compiled cache's lookup, building and processing the parameters, the result's
metadata); on psycopg's cursor, with the text compiled once, about 90 µs. A `Read`
takes that path on PostgreSQL and the usual one elsewhere.

Only for reads whose parameters need no type processing on their way to psycopg
(numbers, text, aware datetimes, lists) and whose columns need none on their way
back: rows come as the driver gives them (tuples).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import sqlalchemy as sa


class Read:
    """A statement read as one row: compiled once per dialect, run on psycopg's cursor
    on PostgreSQL (in the connection's transaction, like any other statement)."""

    def __init__(self, statement: sa.Select[Any] | sa.TextClause) -> None:
        self.statement = statement
        self._compiled: tuple[str, dict[str, Any]] | None = None

    def _text(self, dialect: sa.Dialect) -> tuple[str, dict[str, Any]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            assert not any(b.expanding for b in compiled.binds.values()), "IN lists"
            # Values bound in the statement itself (literals, LIMITs), as psycopg takes
            # them; the caller's parameters go over them.
            values = {
                name: value.value if isinstance(value, Enum) else value
                for name, value in compiled.params.items()
            }
            self._compiled = (str(compiled), values)
        return self._compiled

    def one(self, db: sa.Connection, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The statement's one row."""
        if db.dialect.name != "postgresql":
            return tuple(db.execute(self.statement, dict(params)).one())
        sql, values = self._text(db.dialect)
        driver: Any = db.connection.dbapi_connection
        with driver.cursor() as cursor:
            cursor.execute(sql, {**values, **params})
            row = cursor.fetchone()
        if row is None:
            raise sa.exc.NoResultFound("No row was found when one was required")
        return tuple(row)
