"""Each job's latest run, kept in the database so that `/metrics` on any web process
tells the truth about every worker process."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.jobs.context import JobContext
from app.jobs.models import JobStat


def record(ctx: JobContext, name: str, started_at: datetime, seconds: float, handled: int) -> None:
    """Overwrite the job's row with this run (handled -1: it failed), in one statement."""
    insert = postgresql_insert if ctx.engine.dialect.name == "postgresql" else sqlite_insert
    table = JobStat.__table__  # type: ignore[attr-defined]
    failed = 1 if handled < 0 else 0
    statement = insert(table).values(
        name=name,
        last_started_at=started_at,
        last_seconds=seconds,
        last_handled=max(handled, 0),
        runs=1,
        failures=failed,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "last_started_at": statement.excluded.last_started_at,
            "last_seconds": statement.excluded.last_seconds,
            "last_handled": statement.excluded.last_handled,
            "runs": table.c.runs + 1,
            "failures": table.c.failures + failed,
        },
    )
    with ctx.transaction() as session:
        session.connection().execute(statement)


def latest(session: Session) -> list[JobStat]:
    return list(session.execute(sa.select(JobStat).order_by(JobStat.name)).scalars())
