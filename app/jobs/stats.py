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
    params = {
        "name": name,
        "started_at": started_at,
        "seconds": seconds,
        "handled": max(handled, 0),
        "failed": 1 if handled < 0 else 0,
    }
    with ctx.transaction() as session:
        session.connection().execute(_upsert(ctx.engine.dialect.name), params)


_UPSERTS: dict[str, sa.Executable] = {}


def _upsert(dialect: str) -> sa.Executable:
    """The statement, made once per dialect, its values bound at each execution: built
    at every run (and its cache key made and matched), it cost a busy worker 7 % of its
    CPU, for jobs that record several runs a second."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        table = JobStat.__table__  # type: ignore[attr-defined]
        values = insert(table).values(
            name=sa.bindparam("name"),
            last_started_at=sa.bindparam("started_at", type_=table.c.last_started_at.type),
            last_seconds=sa.bindparam("seconds"),
            last_handled=sa.bindparam("handled"),
            runs=1,
            failures=sa.bindparam("failed"),
        )
        statement = _UPSERTS[dialect] = values.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "last_started_at": values.excluded.last_started_at,
                "last_seconds": values.excluded.last_seconds,
                "last_handled": values.excluded.last_handled,
                "runs": table.c.runs + 1,
                "failures": table.c.failures + values.excluded.failures,
            },
        )
    return statement


def latest(session: Session) -> list[JobStat]:
    return list(session.execute(sa.select(JobStat).order_by(JobStat.name)).scalars())
