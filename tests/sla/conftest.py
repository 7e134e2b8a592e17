"""Committed data for tests of background jobs, which open their own sessions.

Such tests cannot use the rolled-back `session`: workers would not see its rows
(and on SQLite its open write transaction would block them). `committed` gives a
plain session on the engine and deletes every row the test added afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.core import snapshots
from app.core.config import Settings
from app.core.crypto import Cipher
from app.jobs.context import JobContext
from tests.conftest import SECRET, FrozenClock

# Children before parents; self-referencing tables newest first.
_TABLES = (
    "notification",
    "outbox_item",
    "webhook_subscription",
    "timeline_entry",
    "sla_clock",
    "message",
    "question",
    "sla_policy",
    "api_token",
    "login_session",
    "user_institution",
    "user",
    "page",
    "institution",
    "territory",
)
_NO_ID = {"user_institution"}


@pytest.fixture
def committed(engine: sa.Engine) -> Iterator[Session]:
    def high_water() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t: conn.execute(sa.text(f'SELECT coalesce(max(id), 0) FROM "{t}"')).scalar_one()
                for t in _TABLES
                if t not in _NO_ID
            }

    before = high_water()
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.rollback()
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM user_institution WHERE user_id > :n"), {"n": before["user"]}
        )
        for table in _TABLES:
            if table in _NO_ID:
                continue
            if table in ("institution", "territory"):
                conn.execute(
                    sa.text(f'UPDATE "{table}" SET parent_id = NULL WHERE id > :n'),
                    {"n": before[table]},
                )
            conn.execute(sa.text(f'DELETE FROM "{table}" WHERE id > :n'), {"n": before[table]})
    # Raw SQL: the configuration snapshots learn of it only this way.
    snapshots.invalidate()


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
def job_context(
    engine: sa.Engine, settings: Settings, clock: FrozenClock, sent: list[httpx.Request]
) -> Callable[..., JobContext]:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True, "result": {"message_id": len(sent)}})

    def make(**overrides: object) -> JobContext:
        return JobContext(
            engine=engine,
            settings=settings.model_copy(update=overrides),
            clock=clock,
            http=httpx.Client(transport=httpx.MockTransport(handler)),
            cipher=Cipher(SECRET),
        )

    return make
