"""`snapshot_version`: other processes' configuration changes reach a process's
snapshots through one counted number, and nothing is rebuilt while it stands still."""

from __future__ import annotations

import importlib.util
import weakref
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from sqlmodel import Session

import app.models  # noqa: F401
from app.auth.models import User
from app.core import snapshots
from tests.factories.auth import make_user
from tests.factories.directory import make_institution


def _load(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MIGRATION = _load("2026-12-07_0500_snapshot_version")


def _version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT version FROM snapshot_version")).scalar_one())


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(snapshots.time, "monotonic", fake)
    # Snapshots and versions read at other tests' times start afresh.
    monkeypatch.setattr(snapshots, "_stores", weakref.WeakKeyDictionary())
    return fake


def test_every_watched_table_has_the_trigger(live_engine: sa.Engine) -> None:
    assert set(_MIGRATION.TABLES) == set(snapshots._WATCHED_TABLES)
    with live_engine.connect() as conn:
        if live_engine.dialect.name == "postgresql":
            names = conn.execute(
                sa.text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'snapshot_version_%'")
            ).scalars()
            expected = {f"snapshot_version_{t}" for t in _MIGRATION.TABLES}
        else:
            names = conn.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).scalars()
            expected = {
                f"snapshot_version_{t}_{e}" for t in _MIGRATION.TABLES for e in _MIGRATION._EVENTS
            }
        assert expected <= set(names)


def test_a_transaction_that_writes_watched_tables_counts_once(live_engine: sa.Engine) -> None:
    before = _version(live_engine)
    with Session(live_engine) as session:
        make_institution(session)
        make_institution(session)
        session.commit()
    # PostgreSQL counts the transaction once; SQLite's row triggers count each row.
    after = _version(live_engine)
    if live_engine.dialect.name == "postgresql":
        assert after == before + 1
    else:
        assert after > before
    with live_engine.begin() as conn:  # a write that changes nothing is not counted
        conn.execute(sa.text("UPDATE routing_rule SET enabled = enabled WHERE id < 0"))
    assert _version(live_engine) == after


def test_nothing_is_rebuilt_while_the_version_stands(live_engine: sa.Engine, clock: _Clock) -> None:
    builds: list[int] = []

    def build(session: Session) -> str:
        builds.append(1)
        return "value"

    def read() -> str:
        with Session(live_engine) as session:
            return snapshots.get(session, ("test-snapshot",), build)

    read()
    clock.now += 10 * snapshots.TTL  # long past the look at the version
    read()
    assert len(builds) == 1
    clock.now += snapshots.MAX_AGE  # the backstop
    read()
    assert len(builds) == 2


def test_a_change_by_another_process_is_seen_after_ttl(
    live_engine: sa.Engine, clock: _Clock
) -> None:
    builds: list[int] = []

    def build(session: Session) -> int:
        builds.append(1)
        return len(builds)

    def read() -> int:
        with Session(live_engine) as session:
            return snapshots.get(session, ("test-snapshot-2",), build)

    assert read() == 1
    with Session(live_engine) as session:
        make_institution(session)
        session.commit()
    assert read() == 2  # written in this process: seen at once
    generation = snapshots._generation
    # As another process would: raw SQL, of which this process's hooks know nothing.
    with live_engine.begin() as conn:
        conn.execute(sa.text("UPDATE institution SET name = name || '.'"))
    assert snapshots._generation == generation
    assert read() == 2  # the version is not looked at again before TTL
    clock.now += snapshots.TTL
    assert read() == 3
    clock.now += snapshots.TTL
    assert read() == 3  # and only once


def test_a_sign_in_is_not_a_configuration_change(live_engine: sa.Engine) -> None:
    # Every column of a person but those a sign-in writes counts (a new one must be
    # placed on one side or the other).
    counted = {c.strip() for c in _MIGRATION._USER_COLUMNS.split(",")}
    columns = {c.name for c in User.__table__.columns}  # type: ignore[attr-defined]
    assert counted == columns - {"id", "created_at", "last_login_at", "password_hash"}
    with Session(live_engine) as session:
        user = make_user(session)
        session.commit()
        before = _version(live_engine)
        user.last_login_at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
        user.password_hash = "rehashed"
        session.commit()
        assert _version(live_engine) == before
        user.is_active = False
        session.commit()
        assert _version(live_engine) > before
