"""Fixtures for tests that need committed data: the receiver commits on its own.

Loaded for every test by `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

import app.models  # noqa: F401
from app.core.config import Settings
from app.core.db import reading_engine
from tests.conftest import FrozenClock

PAYLOADS = Path(__file__).parent / "webhooks" / "payloads"


def wipe(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != "snapshot_version":  # one row, kept as the migration made it
                conn.execute(table.delete())


@pytest.fixture
def live_engine(engine: sa.Engine) -> Iterator[sa.Engine]:
    wipe(engine)
    yield engine
    wipe(engine)


@pytest.fixture
def live_app(settings: Settings, live_engine: sa.Engine, clock: FrozenClock) -> FastAPI:
    from app.main import create_app

    return create_app(settings, engine=live_engine, clock=clock, run_worker=False)


@pytest.fixture
def live(live_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(live_app, base_url="https://otklik.example.ru") as client:
        yield client


@pytest.fixture
def db(live_engine: sa.Engine) -> Iterator[Session]:
    """A session on committed data; call .commit() after creating rows."""
    with Session(reading_engine(live_engine), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def payload() -> Callable[[str, str], bytes]:
    def load(platform: str, name: str) -> bytes:
        return (PAYLOADS / platform / f"{name}.json").read_bytes()

    return load


def settle(app: FastAPI) -> None:
    """Wait until every acknowledged delivery has been processed."""
    receiver: Any = getattr(app.state, "receiver", None)
    if receiver is not None and receiver.processor is not None:
        assert receiver.processor.wait_idle(20), "ingestion did not finish"
