"""Engine, sessions and the column types shared by every domain."""

from __future__ import annotations

import math
import sqlite3
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.processors import str_to_datetime
from sqlmodel import Session, SQLModel

# Constraint names must be stable across SQLite and PostgreSQL so that
# migrations can refer to them; set before any table is defined.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no offset, so values are normalised to UTC on the way in and
    marked UTC on the way out; naive datetimes are refused, never guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, the two steps of each way (the methods above, then SQLAlchemy's SQLite
    # DATETIME text) in one function: the same text and values, at a fraction of the
    # CPU. Every row processing writes on SQLite has three to six times; it was a third
    # of sending a batch's held rows.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_datetime


def _sqlite_text(value: datetime | None) -> str | None:
    """A UTC time as SQLAlchemy's SQLite DATETIME stores it: `YYYY-MM-DD HH:MM:SS.ffffff`."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat(" ")
    return text if value.microsecond else text + ".000000"


def _sqlite_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed: datetime = str_to_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class EnumText(sa.TypeDecorator[StrEnum]):
    """A StrEnum stored as plain text (no database enum type), read back as the enum."""

    impl = sa.String(20)
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 20) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: StrEnum | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if type(value) is self.enum:  # the usual case, without the enum's lookup
            return value._value_
        return self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


SQLITE_BUSY_MS = 10_000  # how long a SQLite writer waits for another's lock
PROBE_WAIT_MS = 2_000  # how long the readiness write probe waits for it


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; take it over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    try:
        cursor.execute("SELECT ln(1.0)")
    except sqlite3.OperationalError:
        # A SQLite built without its math functions (the reports' percentiles use ln).
        dbapi_connection.create_function("ln", 1, _ln, deterministic=True)
    cursor.close()
    # SQLite's lower() folds ASCII only, so ILIKE (lower(a) LIKE lower(b)) missed
    # «Садовой» for «садовой»: fold case as PostgreSQL does, for any alphabet.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _ln(value: Any) -> Any:
    return math.log(value) if isinstance(value, int | float) and value > 0 else None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(conn: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front, so two writers queue on
    # busy_timeout instead of failing with "database is locked" on upgrade.
    # Read-only work asks for DEFERRED (see reading_engine): in WAL mode a reader
    # then never holds up the webhook writer.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else 'IMMEDIATE'}")


CONNECT_TIMEOUT = 10  # seconds to open a PostgreSQL connection, TCP and start-up


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        db_path = sa.engine.make_url(url).database
        # A URI filename (`file:...?mode=ro&uri=true`) names a file that must exist.
        if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    # Sessions in UTC, so that no server setting shifts a comparison of times.
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("options", "-c timezone=UTC")
    # An unreachable server must fail a request (503) rather than hang it: libpq waits
    # without limit for a server that accepts the connection and never answers, and
    # notices a peer gone silent mid-query only after the system's two-hour keepalive.
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    connect_args.setdefault("keepalives_idle", 30)
    connect_args.setdefault("keepalives_interval", 10)
    connect_args.setdefault("keepalives_count", 3)
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def reading_engine(engine: Engine) -> Engine:
    """The engine for read-only work: on SQLite its transactions take no write lock.
    Made once per engine (making it costs more than the processor's look for work)."""
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = engine.execution_options(sqlite_begin="DEFERRED")
    return reader


def get_session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    # GET pages and API reads must not block the webhook writer on SQLite.
    if request.method in ("GET", "HEAD"):
        engine = reading_engine(engine)
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def insert_ignoring(session: Session, model: Any, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING of one row, in the session's dialect.

    Returns the statement with RETURNING of the new row's id: it yields a row only
    when the insert took place (psycopg reports rowcount -1 for this statement).
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*model.__table__.primary_key.columns)
    )


# A writer waiting for another's lock is busy, not refusing writes: SQLite's busy and
# locked answers, PostgreSQL's lock_not_available (lock_timeout) and query_canceled.
_BUSY_SQLITE = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_BUSY_POSTGRES = {"55P03", "57014"}


def write_refusal(engine: Engine) -> str | None:
    """Why the database refuses writes (a read-only file or `query_only` on SQLite, a
    standby or `default_transaction_read_only` on PostgreSQL, a full disk), or None
    when it takes them.

    The probe rewrites alembic_version's row with itself and rolls back: it leaves no
    row and changes nothing, but needs SQLite's write lock (BEGIN IMMEDIATE) and a
    writable file, or a read-write PostgreSQL transaction. Waiting behind another
    writer is no refusal: the probe gives up on the lock after PROBE_WAIT_MS (a load
    balancer's probe must not hang for SQLite's whole busy timeout) and says writable."""
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.driver_connection if sqlite else None
            if raw is not None:  # before BEGIN IMMEDIATE, which is what waits
                raw.execute(f"PRAGMA busy_timeout={PROBE_WAIT_MS}")
            try:
                with conn.begin() as transaction:
                    if not sqlite:
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {PROBE_WAIT_MS}")
                    conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
                    transaction.rollback()
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    except sa.exc.DBAPIError as exc:
        orig = exc.orig
        if getattr(orig, "sqlite_errorname", None) in _BUSY_SQLITE:
            return None
        if getattr(orig, "sqlstate", None) in _BUSY_POSTGRES:
            return None
        return str(orig).strip().splitlines()[0] if orig is not None else str(exc)
    return None
