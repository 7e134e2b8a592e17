"""The receiver's page cache: bounded, and unknown keys do not cost a read each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.directory.models import Platform
from app.intake import receive
from app.intake.receive import Receiver, receiver_for
from tests.factories.directory import make_page


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(receive, "time", clock)
    return clock


@pytest.fixture
def page_reads(live_engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM page" in statement:
            statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    yield statements
    sa.event.remove(sa.Engine, "before_cursor_execute", count)


@pytest.fixture
def receiver(live_app: FastAPI) -> Receiver:
    return receiver_for(live_app)


def test_an_unknown_key_is_read_once_per_miss_ttl(
    receiver: Receiver, page_reads: list[str], ticks: _Clock
) -> None:
    for _ in range(50):
        assert receiver.page("vk", "no-such-page") is None
    assert len(page_reads) == 1
    ticks.now += receive._MISS_TTL + 0.1
    assert receiver.page("vk", "no-such-page") is None
    assert len(page_reads) == 2


def test_a_key_longer_than_any_page_key_is_not_looked_up(
    receiver: Receiver, page_reads: list[str], live: TestClient
) -> None:
    assert receiver.page("vk", "k" * 65) is None
    response = live.post(f"/webhooks/vk/{'k' * 500}", content=b"{}")
    assert response.status_code == 404
    assert page_reads == []


def test_random_keys_do_not_grow_memory_without_bound(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, ticks: _Clock
) -> None:
    monkeypatch.setattr(receive, "_MAX_MISSES", 20)
    for _ in range(200):
        assert receiver.page("telegram", secrets.token_urlsafe(24)) is None
    assert len(receiver._misses) == 20


def test_found_pages_are_kept_least_recently_used_first_out(
    receiver: Receiver,
    db: Session,
    page_reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
    ticks: _Clock,
) -> None:
    monkeypatch.setattr(receive, "_MAX_PAGES", 2)
    pages = [make_page(db, platform=Platform.vk) for _ in range(3)]
    db.commit()
    first, second, third = ((str(p.platform), p.key) for p in pages)
    page_reads.clear()
    assert receiver.page(*first) is not None
    assert receiver.page(*second) is not None
    assert receiver.page(*first) is not None  # a hit: first is now the most recent
    assert len(page_reads) == 2
    assert receiver.page(*third) is not None  # second, the least recently used, goes
    assert list(receiver._pages) == [first, third]
    assert receiver.page(*second) is not None
    assert len(page_reads) == 4


def test_a_page_created_after_a_miss_is_found_once_the_miss_expires(
    receiver: Receiver, db: Session, ticks: _Clock
) -> None:
    key = secrets.token_urlsafe(24)
    assert receiver.page("vk", key) is None
    page = make_page(db, platform=Platform.vk)
    page.key = key
    db.commit()
    assert receiver.page("vk", key) is None  # still remembered as missing
    ticks.now += receive._MISS_TTL + 0.1
    known = receiver.page("vk", key)
    assert known is not None and known.id == page.id
