"""Folding the marked questions into the report facts and the daily rollup.

Triggers put a question in `report_dirty` whenever something it counts as changes
(`app.reports.facts`). `refresh` takes the marked questions, computes their fact and
transfer rows again, and sums again the rollup rows of every (institution, day) they
left or entered. Reports fold what is left before they read (`current`); the worker's
`fold_marks` job keeps that little.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.core import bulk
from app.jobs.context import JobContext
from app.reports.facts import DAY_COLUMNS, counted, days_of, dialect, insert_facts
from app.reports.models import ReportDay, ReportDirty, ReportFact, ReportTransfer

# Folded per statement; a larger backlog (a fresh upgrade) is rebuilt in one pass.
CHUNK = 5000
REBUILD_FROM = 100_000
# Folded per transaction by the worker's job: short, so that on SQLite the webhook
# writer never waits long behind it.
JOB_CHUNK = 500
# pg_advisory_xact_lock key: one fold at a time (two would sum the same days twice).
_LOCK = 0x5E9077


def _stamp() -> int:
    """A fold's stamp: random, so that no two folds share one (not even a fold rolled
    back and the next) and a scope's sum of stamps changes with any row rewritten."""
    return secrets.randbits(30) + 1  # a positive 32-bit integer


def _sumdays_of(session: Session, pairs: Iterable[tuple[int, Any]] | None, stamp: int) -> None:
    """Sum the rollup rows of (institution, day) `pairs` (all, for None) from the facts,
    stamped with the fold's stamp."""
    f, t = ReportFact, ReportTransfer
    facts: list[Any] = []
    moves: list[Any] = []
    if pairs is not None:
        pairs = list(pairs)
        facts.append(bulk.pairs_among(session, col(f.institution_id), col(f.day), pairs))
        moves.append(bulk.pairs_among(session, col(t.holder_id), col(t.day), pairs))
    both = counted("day", facts, moves).subquery()
    keys = [both.c[k] for k in DAY_COLUMNS[:5]]
    grouped = sa.select(
        *keys, *(sa.func.sum(both.c[k]) for k in DAY_COLUMNS[5:]), sa.literal(stamp)
    ).group_by(*keys)
    day = ReportDay.__table__  # type: ignore[attr-defined]
    session.execute(day.insert().from_select([*DAY_COLUMNS, "stamp"], grouped))


def _fold(session: Session, ids: list[int]) -> None:
    before = days_of(session, ids)
    session.execute(
        sa.delete(ReportFact).where(bulk.among(session, col(ReportFact.question_id), ids))
    )
    session.execute(
        sa.delete(ReportTransfer).where(bulk.among(session, col(ReportTransfer.question_id), ids))
    )
    insert_facts(session, ids)
    pairs = sorted(before | days_of(session, ids))
    stamp = _stamp()
    for i in range(0, len(pairs), 500):
        part = pairs[i : i + 500]
        session.execute(
            sa.delete(ReportDay).where(
                bulk.pairs_among(session, col(ReportDay.institution_id), col(ReportDay.day), part)
            )
        )
        _sumdays_of(session, part, stamp)


def _lock(session: Session, *, wait: bool = True) -> bool:
    """The fold's lock, for the rest of the transaction: whether it was taken (without
    `wait`, not when another transaction holds it)."""
    if dialect(session) != "postgresql":
        return True
    if wait:
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        return True
    taken = session.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK})
    return bool(taken.scalar())


def pending(session: Session) -> bool:
    return session.execute(sa.select(col(ReportDirty.question_id)).limit(1)).first() is not None


def refresh(session: Session, *, limit: int | None = None, wait: bool = True) -> int:
    """Fold the dirty questions into the facts and the rollup (at most `limit`, else
    all); returns how many. Without `wait`, nothing when another transaction is folding.
    The caller commits."""
    if not pending(session):
        return 0
    if not _lock(session, wait=wait):
        return 0
    count = session.execute(sa.select(sa.func.count()).select_from(ReportDirty)).scalar_one()
    if limit is None and count >= REBUILD_FROM:
        return rebuild(session)
    done = 0
    while limit is None or done < limit:
        size = CHUNK if limit is None else min(CHUNK, limit - done)
        # Rows a writer is marking right now wait for its commit and the next fold. The
        # choice is made once (MATERIALIZED): as a subquery of the DELETE, PostgreSQL may
        # run it again for the rows it joins, and took 3 marks for a limit of 2.
        chosen = (
            sa.select(col(ReportDirty.question_id))
            .limit(size)
            .with_for_update(skip_locked=True)
            .cte("chosen")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        taken = session.execute(
            sa.delete(ReportDirty)
            .where(col(ReportDirty.question_id).in_(sa.select(chosen.c.question_id)))
            .returning(col(ReportDirty.question_id))
        )
        ids = sorted(int(i) for (i,) in taken)
        if not ids:
            break
        _fold(session, ids)
        done += len(ids)
    return done


def rebuild(session: Session) -> int:
    """Every fact, transfer and rollup row from the sources, in one pass; returns the
    number of questions. The caller commits."""
    _lock(session)
    session.execute(sa.delete(ReportDirty))
    session.execute(sa.delete(ReportDay))
    session.execute(sa.delete(ReportTransfer))
    session.execute(sa.delete(ReportFact))
    insert_facts(session, None)
    _sumdays_of(session, None, _stamp())
    return int(session.execute(sa.select(sa.func.count()).select_from(ReportFact)).scalar_one())


def fold_marks(ctx: JobContext) -> int:
    """The worker's job: fold what changed in the background, so that a report finds
    little left to fold before it reads. How many questions were folded."""
    with ctx.transaction() as session:
        # Another worker folding now: its fold takes these marks too, or the next run
        # does. Waiting for it held this worker's other jobs (160 ms a wait, 24 waits a
        # bench run of two workers).
        return refresh(session, limit=JOB_CHUNK, wait=False)


def _tune(session: Session) -> None:
    """No JIT for the reports' statements on PostgreSQL: their estimated costs (a
    probe per open question, a sort per percentile) pass jit_above_cost, and compiling
    them took seconds (6.5 s of JIT for a 3 s backlog at a million questions), far more
    than it saves on queries that run in milliseconds without it. SET LOCAL: for the
    rest of the caller's transaction only."""
    if dialect(session) == "postgresql":
        session.execute(sa.text("SET LOCAL jit = off"))


def current(session: Session) -> None:
    """Fold in what changed since the last fold, before a report reads: exact figures.

    A session bound to one connection (the tests) or writing on SQLite (it holds the
    write lock) folds in place. Otherwise the fold runs in a transaction of its own:
    on PostgreSQL the next statement sees it; a SQLite reader's transaction starts
    again after it, since its snapshot was taken before the fold.
    """
    _tune(session)
    if not pending(session):
        return
    bind = session.get_bind()
    begin = bind.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    sqlite = bind.dialect.name == "sqlite"
    if isinstance(bind, sa.Connection) or (sqlite and begin != "DEFERRED"):
        refresh(session)
        session.flush()
        return
    engine = bind.execution_options(sqlite_begin="IMMEDIATE") if sqlite else bind
    with Session(engine) as own, own.begin():
        refresh(own)
    if sqlite:
        session.commit()  # a reader's: ends its snapshot, nothing to write
    else:
        _tune(session)
