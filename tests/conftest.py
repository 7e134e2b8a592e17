"""Test set-up: a migrated schema once per run, one rolled-back transaction per test.

The backend is SQLite (a temporary file) unless OTKLIK_TEST_BACKEND=postgres, in
which case OTKLIK_TEST_POSTGRES_URL names the database. Tests marked `postgres`
need PostgreSQL: a SQLite run deselects them (they run in the PostgreSQL run),
and in CI a missing PostgreSQL URL is an error, never a silent skip.

Under pytest-xdist (`-n 2 --dist loadscope`, what `make test` runs) each worker has a
database of its own: its own SQLite file, or on PostgreSQL the named database with the
worker's id appended (`otklik_ci_gw0`), created when missing. A module's tests stay on
one worker, and so do all the browser tests (one demo server and one Chromium).

Passwords are hashed with cheap argon2 parameters in the tests (tests/hashing.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import migrate
from app.core.config import Settings
from app.core.db import get_session, make_engine
from tests.hashing import cheapen

pytest_plugins = ["tests.live"]
cheapen()

BACKEND = os.environ.get("OTKLIK_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get("OTKLIK_TEST_POSTGRES_URL", "")
SECRET = "test-secret-key-of-sufficient-length-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    if BACKEND == "postgres" and not POSTGRES_URL:
        raise pytest.UsageError("OTKLIK_TEST_BACKEND=postgres needs OTKLIK_TEST_POSTGRES_URL")
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI must provide OTKLIK_TEST_POSTGRES_URL: PostgreSQL tests may not be skipped"
        )


def pytest_report_header(config: pytest.Config) -> str:
    return f"otklik test backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Each backend's run deselects the other's tests; CI always makes both runs.
    others = ("sqlite_run", "sqlite") if BACKEND == "postgres" else ("postgres",)
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(m) for m in others) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope`, with the whole browser directory as one scope: its tests share
    one demo server and one Chromium (session fixtures), which one worker starts. The
    other scopes are modules (and classes), so module-scoped set-ups are built once.
    (xdist_group marks would do this, but pytest-xdist 3.8's loadgroup rewrites
    `item._nodeid`, which pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/browser/"):
                return "tests/browser"
            return str(super()._split_scope(nodeid))

    return BrowserTogether(config, log)


def _worker_postgres_url(url: str) -> str:
    """The worker's own database under pytest-xdist (created when missing), else `url`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    parsed = sa.engine.make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = make_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
        if found is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def _reset_postgres(url: str) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if BACKEND == "postgres":
        url = _worker_postgres_url(Settings(database_url=POSTGRES_URL).database_url)
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        base_url="https://otklik.example.ru",
        run_worker=False,
        var_dir=tmp_path / "var",
    )


@pytest.fixture
def connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def session(connection: sa.Connection) -> Iterator[Session]:
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as s:
        yield s


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC))  # Tuesday 12:00 in Chelyabinsk


@pytest.fixture
def http_handler() -> list[Callable[[httpx.Request], httpx.Response]]:
    """Tests append a handler to answer outbound platform calls."""
    return []


@pytest.fixture
def app(
    settings: Settings,
    engine: sa.Engine,
    session: Session,
    clock: FrozenClock,
    http_handler: list[Callable[[httpx.Request], httpx.Response]],
) -> FastAPI:
    from app.main import create_app

    def handler(request: httpx.Request) -> httpx.Response:
        if not http_handler:
            return httpx.Response(599, json={"error": "no fake platform configured"})
        return http_handler[-1](request)

    application = create_app(
        settings,
        engine=engine,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        run_worker=False,
    )

    def _session() -> Iterator[Session]:
        yield session

    application.dependency_overrides[get_session] = _session
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://otklik.example.ru") as c:
        yield c


@pytest.fixture
def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture(autouse=True)
def _no_event_loop_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """The sync Playwright session of the browser tests keeps its event loop marked
    running in the main thread for as long as it lives (by design), which would make
    every later `asyncio.run` fail: other tests start without it and give it back."""
    import asyncio

    leaked = asyncio.events._get_running_loop()
    in_browser = "browser" in request.fixturenames or request.node.get_closest_marker("browser")
    if leaked is not None and not in_browser:
        asyncio.events._set_running_loop(None)
    else:
        leaked = None
    try:
        yield
    finally:
        if leaked is not None:
            asyncio.events._set_running_loop(leaked)
