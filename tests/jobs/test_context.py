"""`ctx.transaction()`: the one place a job's work commits."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.core.db import reading_engine
from app.jobs.context import JobContext
from app.outbox.models import SendRate
from tests.conftest import FrozenClock


def _keys(engine: sa.Engine) -> list[str]:
    """What another connection sees (a read: no write lock on SQLite)."""
    with Session(reading_engine(engine)) as other:
        return list(other.exec(select(SendRate.key).order_by(SendRate.key)).all())


def test_a_transaction_commits_when_its_block_ends(
    ctx: JobContext, live_engine: sa.Engine, clock: FrozenClock
) -> None:
    with ctx.transaction() as session:
        row = SendRate(key="vk:1", next_at=clock())
        session.add(row)
        session.flush()
        assert _keys(live_engine) == []  # not before the block ends
    assert _keys(live_engine) == ["vk:1"]
    assert row.key == "vk:1"  # still loaded: objects outlive the commit


def _add_then_fail(ctx: JobContext, key: str, clock: FrozenClock) -> None:
    with ctx.transaction() as session:
        session.add(SendRate(key=key, next_at=clock()))
        session.flush()
        raise RuntimeError("platform down")


def test_a_transaction_rolls_back_when_its_block_raises(
    ctx: JobContext, live_engine: sa.Engine, clock: FrozenClock
) -> None:
    with pytest.raises(RuntimeError, match="platform down"):
        _add_then_fail(ctx, "vk:1", clock)
    assert _keys(live_engine) == []


def test_each_block_is_a_transaction_of_its_own(
    ctx: JobContext, live_engine: sa.Engine, clock: FrozenClock
) -> None:
    """A job commits step by step: a later failure keeps what earlier steps committed."""
    with ctx.transaction() as session:
        session.add(SendRate(key="claimed", next_at=clock()))
    with pytest.raises(RuntimeError, match="platform down"):
        _add_then_fail(ctx, "outcome", clock)
    assert _keys(live_engine) == ["claimed"]


def test_a_reading_transaction_sees_committed_rows(
    ctx: JobContext, live_engine: sa.Engine, clock: FrozenClock
) -> None:
    with ctx.transaction() as session:
        session.add(SendRate(key="vk:1", next_at=clock()))
    with ctx.transaction(reading=True) as session:
        assert session.exec(select(SendRate.key)).all() == ["vk:1"]
