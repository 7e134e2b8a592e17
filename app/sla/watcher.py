"""The SLA watcher: raises warnings and breaches when they fall due, and escalates.

Any number of workers may run it. Each claims a batch of due clocks with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer at a time), and
every warning, breach and escalation is a timeline entry under a dedupe key: only
the worker whose entry was new notifies and emits the outgoing event, so each
happens exactly once whatever the races.

Escalation: a warning goes to the institution's operators; a breach to them and
the institution's supervisors; if still unanswered after another half of the
target, to the supervisors of the territories above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import bulk
from app.core.config import Settings
from app.intake.turns import intake_signal
from app.jobs.context import JobContext
from app.questions.models import OutboxItem, Question, TimelineEntry
from app.sla import clocks as clock_ops
from app.sla import escalation, notify
from app.sla import recipients as audience
from app.sla.models import ClockState, SlaClock, Target

_TIMELINE: sa.Table = TimelineEntry.__table__  # type: ignore[attr-defined]

BATCH = 200
# On PostgreSQL a sweep holds its questions' rows until it commits, and processing may
# be waiting for one of them (a citizen's follow-up, a page's reply): smaller batches.
BATCH_POSTGRES = 50
WATCHED = (ClockState.running, ClockState.warning, ClockState.breached)


def record(session: Session, batch: Batch, now: datetime, settings: Settings) -> int:
    """Write what the batch raised: the timeline entries in one INSERT that skips the
    keys already there (another worker raised them: nothing more to do), then for the
    new ones the alerts in one INSERT and the outgoing events. Returns how many were new."""
    if not batch.raised:
        return 0
    # The clocks' and questions' changes first, in one flush: the reads below (snapshots
    # of subscriptions) then see a session with nothing pending.
    session.flush()
    # The rows as one parameter of one statement (`bulk.insert_many`): a statement of
    # the batch's values was compiled, and parsed by psycopg, anew every sweep.
    new = set(
        bulk.insert_many(
            session.connection(),
            _TIMELINE,
            escalation.timeline_rows(batch.raised),
            skip_conflicts=True,
            returning="dedupe_key",
        )
    )
    alerts, outbox = escalation.alerts_and_events(
        session, [r for r in batch.raised if r.key in new], batch.recipients, now, settings
    )
    notify.insert_alerts(session, alerts)
    if outbox:
        session.execute(sa.insert(OutboxItem), outbox)
    batch.raised.clear()
    return len(new)


class Batch:
    """What a sweep reads once for all its clocks: their questions and every clock of
    those questions (two queries), and the people to alert (`audience.Recipients`).
    The session's objects are then changed in place and written by one flush."""

    def __init__(
        self,
        session: Session,
        clocks: Sequence[SlaClock],
        recipients: audience.Recipients | None = None,
    ) -> None:
        ids = sorted({clock.question_id for clock in clocks})
        self.questions: dict[int, Question] = {}
        self.clocks: dict[int, dict[Target, SlaClock]] = {i: {} for i in ids}
        if ids:
            for question in session.exec(
                select(Question).where(bulk.among(session, col(Question.id), ids))
            ):
                assert question.id is not None
                self.questions[question.id] = question
            for row in session.exec(
                select(SlaClock).where(bulk.among(session, col(SlaClock.question_id), ids))
            ):
                self.clocks[row.question_id][Target(row.target)] = row
        self.recipients = recipients or audience.Recipients(session)
        self.raised: list[escalation.Raised] = []


def advance(
    session: Session,
    clock: SlaClock,
    now: datetime,
    settings: Settings,
    batch: Batch | None = None,
) -> None:
    """Move one due clock on: warning, breach, escalation, as many as are due by `now`.
    `batch`: what the sweep read for all its clocks, and where the warnings, breaches
    and escalations are noted for the sweep to `record` them (without a batch: read
    for this clock, and recorded at once). The clock's changes are written by the
    session's next flush."""
    alone = batch is None
    batch = batch or Batch(session, [clock])
    question = batch.questions.get(clock.question_id)
    if question is None:
        clock.check_at = None
        session.add(clock)
        return
    escalation.step(session, clock, question, now, settings, batch.raised)
    session.add(clock)
    # The question's deadline: the earliest of its clocks, as `sla_service.refresh_due`
    # would read them (the batch holds every clock of the question).
    clock_ops.set_due(
        session, question, batch.clocks.get(question.id or 0) or {clock.target: clock}
    )
    if alone:
        record(session, batch, now, settings)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """A watched clock whose next check has come."""
    return sa.and_(col(SlaClock.state).in_(WATCHED), col(SlaClock.check_at) <= now)


def due_clocks(session: Session, now: datetime, limit: int = BATCH) -> Sequence[SlaClock]:
    """Claim up to `limit` clocks whose next check is due (skipping ones other workers hold).

    On PostgreSQL their questions are locked with them (FOR NO KEY UPDATE), and a clock
    whose question another transaction holds is skipped until the next sweep: processing
    locks a question and then its clocks (a citizen's follow-up), so a sweep that held the
    clock and then waited for the question (its UPDATE, or the foreign key check of a
    timeline entry) deadlocked with it. Holding both from the claim on, the sweep never
    waits for anyone; processing waits for the sweep's short transaction."""
    query = (
        select(SlaClock)
        .where(_due(now))
        .order_by(col(SlaClock.check_at), col(SlaClock.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.join(Question, col(Question.id) == col(SlaClock.question_id)).with_for_update(
            skip_locked=True,
            key_share=True,
            of=[SlaClock.__table__, Question.__table__],  # type: ignore[attr-defined]
        )
    return session.exec(query).all()


def sweep(
    session: Session,
    now: datetime,
    settings: Settings,
    limit: int = BATCH,
    *,
    stand_aside: Callable[[], bool] | None = None,
    recipients: audience.Recipients | None = None,
) -> int:
    """One batch in the caller's transaction; returns how many clocks moved on.

    `stand_aside` is asked after each clock: when it says yes (a webhook waits for
    SQLite's write lock), the batch ends there so that the caller commits at once;
    the clocks left over are still due and come in the next batch."""
    # Who the alerts may reach, read before the claim locks the questions (`recipients`:
    # those the run's earlier batches read).
    recipients = recipients.bind(session) if recipients else audience.Recipients(session)
    due = (
        sa.select(col(Question.institution_id))
        .join(SlaClock, col(SlaClock.question_id) == col(Question.id))
        .where(_due(now))
        .order_by(col(SlaClock.check_at), col(SlaClock.id))
        .limit(limit)
        .subquery()
    )
    recipients.prefetch(sorted(set(session.execute(sa.select(due.c.institution_id)).scalars())))
    clocks = due_clocks(session, now, limit)
    batch = Batch(session, clocks, recipients)
    # The claim skips clocks another sweep holds and takes later ones: their institutions
    # in one read too (nothing to read when they were among those above).
    recipients.prefetch(sorted({q.institution_id for q in batch.questions.values()}))
    handled = 0
    # Written together when the batch ends (`bulk.write_changes`) instead of a flush per
    # clock; then the timeline entries, alerts and outgoing events of the whole batch
    # (`record`).
    with session.no_autoflush:
        for clock in clocks:
            advance(session, clock, now, settings, batch)
            handled += 1
            if stand_aside is not None and stand_aside():
                break
    # The clocks' and questions' changes in one UPDATE each: the ORM's flush wrote one a
    # row, and on PostgreSQL each ran the report marks' trigger (8,800 a bench run).
    bulk.write_changes(
        session,
        [
            *(c for of_question in batch.clocks.values() for c in of_question.values()),
            *batch.questions.values(),
        ],
    )
    record(session, batch, now, settings)
    return handled


def sla_sweep(ctx: JobContext) -> int:
    """The periodic job: batches, each in its own transaction, until nothing is due.
    On SQLite it gives the write lock to a waiting webhook after the clock in hand."""
    now = ctx.clock()
    due = sa.select(col(SlaClock.id)).where(_due(now))
    if not ctx.anything(due):
        return 0  # the usual run: no clock to look at
    total = 0
    limit = BATCH_POSTGRES if ctx.engine.dialect.name == "postgresql" else BATCH
    recipients: audience.Recipients | None = None
    signal = intake_signal(ctx.engine)
    while not ctx.stopping.is_set():
        asked = False

        def webhook_waits() -> bool:
            nonlocal asked
            asked = signal is not None and signal.raised()
            return asked

        with ctx.transaction() as session:
            recipients = recipients.bind(session) if recipients else audience.Recipients(session)
            handled = sweep(
                session,
                now,
                ctx.settings,
                limit,
                stand_aside=webhook_waits,
                recipients=recipients,
            )
        total += handled
        if asked and signal is not None:
            signal.wait_lowered()
        elif handled < limit:
            break
    return total
