"""Fixtures of the reliability tests: real `otklik serve` processes on the test database,
a fake platform API, a VK page; every process is stopped (its whole group) at the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.directory import service as directory_service
from app.directory.models import Platform
from tests.factories.directory import cipher, make_page
from tests.reliability.harness import FakeApi, Serve, server_env
from webhooks import PageSecrets

# `make soak` raises the counts; the suite keeps them small.
SOAK = float(os.environ.get("OTKLIK_SOAK", "0") or 0)


def scaled(suite: int, soak: int) -> int:
    return soak if SOAK else suite


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture
def serve_factory(
    database_url: str, tmp_path: Path, fake_api: FakeApi
) -> Iterator[Callable[..., Serve]]:
    """Makes `otklik serve` processes on the test database (not started)."""
    made: list[Serve] = []

    def make(**env: str) -> Serve:
        n = len(made)
        serve = Serve(
            server_env(
                database_url,
                tmp_path / "var",
                OTKLIK_VK_API_URL=fake_api.url,
                OTKLIK_TELEGRAM_API_URL=fake_api.url,
                **env,
            ),
            tmp_path / f"serve{n}.log",
        )
        made.append(serve)
        return serve

    yield make
    for serve in made:
        serve.stop()


def committed_page(engine: sa.Engine, platform: Platform = Platform.vk) -> tuple[int, PageSecrets]:
    with Session(engine) as session:
        page = make_page(session, platform=platform)
        session.commit()
        assert page.id is not None
        return page.id, directory_service.page_secrets(page, cipher())


@pytest.fixture
def vk_page(live_engine: sa.Engine) -> tuple[int, PageSecrets]:
    return committed_page(live_engine)
