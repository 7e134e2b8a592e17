"""`/readyz` is ready only when the database takes writes: a process on a read-only
SQLite file, or on a read-only PostgreSQL (a standby), cannot store a webhook, so the
balancer must not send it any. The probe leaves no row and changes nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import make_engine, write_refusal
from app.main import create_app


def _ready(settings: Settings, engine: sa.Engine) -> Any:
    app = create_app(settings, engine=engine, run_worker=False)
    with TestClient(app) as client:
        return client.get("/readyz")


def _versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]


@pytest.fixture
def sqlite_copy(engine: sa.Engine, tmp_path: Path) -> Path:
    """A migrated SQLite file of the test's own."""
    target = tmp_path / "copy.db"
    raw = engine.raw_connection()
    try:
        destination = sqlite3.connect(target)
        raw.driver_connection.backup(destination)  # type: ignore[union-attr]
        destination.close()
    finally:
        raw.close()
    return target


def test_a_writable_database_is_ready_and_the_probe_changes_nothing(
    settings: Settings, engine: sa.Engine
) -> None:
    before = _versions(engine)
    ready = _ready(settings, engine)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert write_refusal(engine) is None
    assert _versions(engine) == before


@pytest.mark.sqlite
def test_a_sqlite_file_opened_read_only_is_not_ready(settings: Settings, sqlite_copy: Path) -> None:
    # As a read-only mount or file gives it (the tests run as root, which ignores chmod).
    engine = make_engine(f"sqlite:///file:{sqlite_copy}?mode=ro&uri=true")
    try:
        ready = _ready(settings, engine)
    finally:
        engine.dispose()
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["code"] == "database_read_only"
    assert ready.headers["retry-after"]


@pytest.mark.sqlite
def test_a_sqlite_database_in_query_only_mode_is_not_ready(
    settings: Settings, sqlite_copy: Path
) -> None:
    engine = make_engine(f"sqlite:///{sqlite_copy}")
    sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only=1"))
    try:
        ready = _ready(settings, engine)
        refusal = write_refusal(engine)
    finally:
        engine.dispose()
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["code"] == "database_read_only"
    assert refusal is not None and "readonly" in refusal


@pytest.mark.postgres
def test_a_read_only_postgresql_is_not_ready(settings: Settings, engine: sa.Engine) -> None:
    read_only = make_engine(
        engine.url.render_as_string(hide_password=False),
        connect_args={"options": "-c timezone=UTC -c default_transaction_read_only=on"},
    )
    try:
        ready = _ready(settings, read_only)
    finally:
        read_only.dispose()
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["code"] == "database_read_only"


@pytest.mark.postgres
def test_a_postgresql_busy_with_a_migration_is_not_called_read_only(engine: sa.Engine) -> None:
    # Another transaction holds alembic_version's row: the probe gives up waiting after
    # its lock timeout and calls the database writable, not read-only.
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            holding.set()
            release.wait(20)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(20)
        assert write_refusal(engine) is None
    finally:
        release.set()
        thread.join(20)


@pytest.mark.sqlite
def test_a_sqlite_database_busy_with_another_writer_is_not_called_read_only(
    sqlite_copy: Path,
) -> None:
    import time

    engine = make_engine(f"sqlite:///{sqlite_copy}")
    holder = sqlite3.connect(sqlite_copy, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
        started = time.monotonic()
        assert write_refusal(engine) is None
        waited = time.monotonic() - started
        # It waited for the lock, but only the probe's while, not SQLite's 10 s.
        assert 1.5 < waited < 6, waited
        pooled = engine.raw_connection()  # the pooled connection's own wait is back
        try:
            [(wait,)] = pooled.driver_connection.execute("PRAGMA busy_timeout").fetchall()  # type: ignore[union-attr]
        finally:
            pooled.close()
        assert wait == 10_000
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
