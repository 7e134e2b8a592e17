"""The tables' statistics and dead rows, kept by the worker when PostgreSQL's autovacuum
is off.

PostgreSQL plans each statement from its tables' statistics, which ANALYZE gathers and
the autovacuum daemon keeps current. With autovacuum off (a server's setting; the
development machine has it off) a table created empty stays nearly empty to the planner
for good, and rows updated many times (deliveries, SLA clocks, the report marks, the
outbox) leave their dead versions in every index. At a few thousand questions an hour
that made PostgreSQL's share of each event several times larger, and the citizen-names
job's reads took a second each (plans for empty tables).

`keep_statistics` does what autovacuum would, by autovacuum's own default thresholds
(ANALYZE after changes to 10 % of a table, VACUUM when 20 % of it is dead, each plus a
base), for the tables that passed them. Nothing when autovacuum is on (the server does
it), and nothing on SQLite, whose planner needs no statistics to choose these indexes.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from app.jobs.context import JobContext

log = logging.getLogger("otklik.upkeep")

INTERVAL = 30.0  # seconds between looks
ANALYZE_BASE, ANALYZE_SCALE = 500, 0.1
VACUUM_BASE, VACUUM_SCALE = 500, 0.2

_STALE = sa.text(
    """
    SELECT relname, n_dead_tup > :vacuum_base + :vacuum_scale * n_live_tup AS dead
    FROM pg_stat_user_tables
    WHERE schemaname = current_schema()
      AND (n_mod_since_analyze > :analyze_base + :analyze_scale * n_live_tup
           OR n_dead_tup > :vacuum_base + :vacuum_scale * n_live_tup)
    ORDER BY relname
    """
)


def autovacuum_on(conn: sa.Connection) -> bool:
    return conn.execute(sa.text("SELECT current_setting('autovacuum')")).scalar() == "on"


def stale_tables(conn: sa.Connection) -> list[tuple[str, bool]]:
    """Tables whose statistics are out of date, and whether each also wants a VACUUM."""
    rows = conn.execute(
        _STALE,
        {
            "analyze_base": ANALYZE_BASE,
            "analyze_scale": ANALYZE_SCALE,
            "vacuum_base": VACUUM_BASE,
            "vacuum_scale": VACUUM_SCALE,
        },
    )
    return [(str(name), bool(dead)) for name, dead in rows]


def keep_statistics(ctx: JobContext) -> int:
    """The periodic job: ANALYZE (VACUUM too, where rows died) the tables that changed
    enough; returns how many. A table another worker is already at is skipped."""
    if ctx.engine.dialect.name != "postgresql":
        return 0
    with ctx.engine.connect() as conn:
        if autovacuum_on(conn):
            return 0
        stale = stale_tables(conn)
    if not stale:
        return 0
    # VACUUM runs outside any transaction block.
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        quote = conn.dialect.identifier_preparer.quote
        for name, dead in stale:
            command = "VACUUM (ANALYZE, SKIP_LOCKED)" if dead else "ANALYZE (SKIP_LOCKED)"
            conn.execute(sa.text(f"{command} {quote(name)}"))
    log.info("tables analysed", extra={"fields": {"tables": [name for name, _ in stale]}})
    return len(stale)
