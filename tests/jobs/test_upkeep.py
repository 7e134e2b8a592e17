"""With PostgreSQL's autovacuum off, the worker keeps the statistics of the tables that
changed (plans for empty tables took a second per read at a few thousand questions)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.jobs import upkeep
from app.jobs.context import JobContext


def _analysed(engine: sa.Engine, table: str) -> tuple[bool, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT last_analyze IS NOT NULL, n_mod_since_analyze FROM pg_stat_user_tables "
                "WHERE relname = :t"
            ),
            {"t": table},
        ).one()
    return bool(row[0]), int(row[1])


def _change_a_table(engine: sa.Engine) -> None:
    """2,000 new rows in `job_stat`, counted in the statistics at once."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO job_stat (name, last_started_at, last_seconds, last_handled, "
                "runs, failures) SELECT 'job ' || n, now(), 0, 0, 1, 0 "
                "FROM generate_series(1, 2000) AS n"
            )
        )
        conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))


@pytest.mark.postgres
def test_tables_that_changed_are_analysed_when_autovacuum_is_off(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "autovacuum_on", lambda conn: False)
    _change_a_table(ctx.engine)
    with ctx.engine.connect() as conn:
        assert ("job_stat", False) in upkeep.stale_tables(conn)

    assert upkeep.keep_statistics(ctx) >= 1
    analysed, changed = _analysed(ctx.engine, "job_stat")
    assert analysed and changed == 0
    with ctx.engine.connect() as conn:
        assert ("job_stat", False) not in upkeep.stale_tables(conn)


@pytest.mark.postgres
def test_nothing_is_done_when_the_server_keeps_them(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "autovacuum_on", lambda conn: True)
    _change_a_table(ctx.engine)
    assert upkeep.keep_statistics(ctx) == 0


@pytest.mark.sqlite
def test_nothing_to_do_on_sqlite(ctx: JobContext) -> None:
    assert upkeep.keep_statistics(ctx) == 0
