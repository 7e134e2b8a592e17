"""The rows of a region's year (`app.demo.region_year`), written in bulk.

One chunk of rows per table at a time, handed straight to the driver: COPY on
PostgreSQL, executemany on SQLite, with each value converted here as its column type
stores it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from app.core.db import EnumText, UTCDateTime
from app.questions.models import Message, OutboxItem, Question, TimelineEntry
from app.sla.models import SlaClock


class Writer:
    """Rows of each table for one chunk, then one bulk write per table straight through
    the driver: COPY on PostgreSQL, executemany on SQLite. SQLAlchemy's per-value bind
    processing took more than half of the time, so values are converted here, the
    way the column types store them (`app.core.db.UTCDateTime` keeps naive UTC text on
    SQLite; JSON as text; enums as their values)."""

    TABLES: tuple[Any, ...] = (Question, Message, SlaClock, TimelineEntry, OutboxItem)

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in self.TABLES}

    def flush(self, conn: sa.Connection) -> None:
        postgres = conn.dialect.name == "postgresql"
        for table in self.TABLES:
            rows = self.rows[table]
            if not rows:
                continue
            columns = list(rows[0])
            types = [table.__table__.c[c].type for c in columns]
            convert = [_converter(t, postgres) for t in types]
            values = [
                tuple(v if f is None else f(v) for f, v in zip(convert, row.values(), strict=True))
                for row in rows
            ]
            name = table.__tablename__
            names = ", ".join(f'"{c}"' for c in columns)
            driver: Any = conn.connection.driver_connection
            if postgres:
                with (
                    driver.cursor() as cursor,
                    cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy,
                ):
                    for row in values:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                driver.executemany(f"INSERT INTO {name} ({names}) VALUES ({marks})", values)
            rows.clear()


def _converter(column_type: Any, postgres: bool) -> Callable[[Any], Any] | None:
    """How a column's value is handed to the driver (None: as it is)."""
    if isinstance(column_type, EnumText):
        return _enum_value
    if isinstance(column_type, sa.JSON):
        return _json
    if postgres:
        return None
    if isinstance(column_type, UTCDateTime):
        return _sqlite_time
    if isinstance(column_type, sa.Boolean):
        return _bool
    return None


def _enum_value(v: Any) -> Any:
    return None if v is None else str(v.value if isinstance(v, StrEnum) else v)


def _json(v: Any) -> str:
    return json.dumps(v)


def _bool(v: Any) -> Any:
    return None if v is None else int(v)


def _sqlite_time(v: datetime | None) -> str | None:
    """As SQLAlchemy stores a UTC instant on SQLite (`UTCDateTime`): naive UTC text."""
    if v is None:
        return None
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond
    )  # fmt: skip


def max_id(conn: sa.Connection, model: Any) -> int:
    return int(conn.execute(sa.select(sa.func.max(model.id))).scalar() or 0)
