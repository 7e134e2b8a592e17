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

from sqlmodel import Session, col, select

from app.core.config import Settings
from app.intake.turns import intake_signal
from app.jobs.context import JobContext
from app.questions import outgoing, timeline
from app.questions.models import Question
from app.sla import notify
from app.sla import service as sla_service
from app.sla.models import ClockState, SlaClock, Target

BATCH = 200
# After a breach, escalate up the territory chain once this share of the target passed again.
ESCALATE_AFTER = 0.5
WATCHED = (ClockState.running, ClockState.warning, ClockState.breached)

LEVEL_OPERATORS, LEVEL_SUPERVISORS, LEVEL_CHAIN = 1, 2, 3

TARGET_RU: dict[str, str] = {
    Target.first_response: "первый ответ",
    Target.next_response: "ответ на уточнение гражданина",
    Target.final_answer: "окончательный ответ",
}


def _excerpt(text: str, size: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _text(kind: str, question: Question, clock: SlaClock, settings: Settings) -> str:
    target = TARGET_RU.get(str(clock.target), str(clock.target))
    head = {
        "warning": f"Срок ответа подходит к концу: {target} до {{due}}",
        "breached": f"Срок ответа нарушен: {target} нужно было дать до {{due}}",
        "escalated": f"Эскалация: нет ответа, {target} нужно было дать до {{due}}",
    }[kind]
    link = f"{settings.base_url.rstrip('/')}/questions/{question.id}"
    return f"{head}. Вопрос №{question.id}: «{_excerpt(question.text)}» {link}"


def _cycle(clock: SlaClock) -> str:
    # A next-response clock restarts on every follow-up: each run has its own alerts.
    return str(int(clock.started_at.timestamp()))


def _raise(
    session: Session,
    clock: SlaClock,
    question: Question,
    kind: str,
    at: datetime,
    now: datetime,
    settings: Settings,
) -> bool:
    """Record the event once; on the first recording, notify and emit. Returns whether new."""
    assert question.id is not None
    data = {
        "target": str(clock.target),
        "clock_id": clock.id,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "detected_at": now.isoformat(),
    }
    key = f"sla:{clock.id}:{_cycle(clock)}:{kind}"
    if not timeline.record(session, question.id, f"sla.{kind}", at, data=data, dedupe_key=key):
        return False
    level = {"warning": LEVEL_OPERATORS, "breached": LEVEL_SUPERVISORS}.get(kind, LEVEL_CHAIN)
    users = []
    if level <= LEVEL_SUPERVISORS:
        users += notify.operators(session, question.institution_id)
    if level == LEVEL_SUPERVISORS:
        users += notify.supervisors(session, question.institution_id)
    if level == LEVEL_CHAIN:
        users += notify.chain_supervisors(session, question.institution_id)
    notify.alert(
        session,
        users,
        question,
        kind=f"sla.{kind}",
        dedupe_key=key,
        text=_text(kind, question, clock, settings),
        due_at=clock.due_at or at,
        now=now,
        settings=settings,
    )
    if kind in ("warning", "breached"):
        outgoing.emit(session, f"sla.{kind}", question, now, data)
    return True


def advance(session: Session, clock: SlaClock, now: datetime, settings: Settings) -> None:
    """Move one due clock on: warning, breach, escalation, as many as are due by `now`."""
    question = session.get(Question, clock.question_id)
    if question is None:
        clock.check_at = None
        session.add(clock)
        return
    for _ in range(3):
        if clock.check_at is None or clock.check_at > now or clock.due_at is None:
            break
        if clock.state in (ClockState.running, ClockState.warning) and clock.due_at <= now:
            clock.state = ClockState.breached
            clock.breached_at = now
            clock.escalation_level = LEVEL_SUPERVISORS
            basis = sla_service.clock_basis(session, clock)
            clock.check_at = basis.add(clock.due_at, clock.target_minutes * ESCALATE_AFTER)
            _raise(session, clock, question, "breached", clock.due_at, now, settings)
        elif clock.state == ClockState.running:
            clock.state = ClockState.warning
            clock.warned_at = now
            clock.escalation_level = LEVEL_OPERATORS
            clock.check_at = clock.due_at
            _raise(session, clock, question, "warning", clock.warn_at or now, now, settings)
        elif clock.state == ClockState.breached and clock.escalation_level < LEVEL_CHAIN:
            clock.escalation_level = LEVEL_CHAIN
            at = clock.check_at
            clock.check_at = None
            _raise(session, clock, question, "escalated", at, now, settings)
        else:
            clock.check_at = None
    session.add(clock)
    session.flush()
    sla_service.refresh_due(session, question)


def due_clocks(session: Session, now: datetime, limit: int = BATCH) -> Sequence[SlaClock]:
    """Claim up to `limit` clocks whose next check is due (skipping ones other workers hold)."""
    query = (
        select(SlaClock)
        .where(col(SlaClock.state).in_(WATCHED), col(SlaClock.check_at) <= now)
        .order_by(col(SlaClock.check_at), col(SlaClock.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).all()


def sweep(
    session: Session,
    now: datetime,
    settings: Settings,
    limit: int = BATCH,
    *,
    stand_aside: Callable[[], bool] | None = None,
) -> int:
    """One batch in the caller's transaction; returns how many clocks moved on.

    `stand_aside` is asked after each clock: when it says yes (a webhook waits for
    SQLite's write lock), the batch ends there so that the caller commits at once;
    the clocks left over are still due and come in the next batch."""
    clocks = due_clocks(session, now, limit)
    handled = 0
    for clock in clocks:
        advance(session, clock, now, settings)
        handled += 1
        if stand_aside is not None and stand_aside():
            break
    return handled


def sla_sweep(ctx: JobContext) -> int:
    """The periodic job: batches, each in its own transaction, until nothing is due.
    On SQLite it gives the write lock to a waiting webhook after the clock in hand."""
    now = ctx.clock()
    total = 0
    signal = intake_signal(ctx.engine)
    while not ctx.stopping.is_set():
        asked = False

        def webhook_waits() -> bool:
            nonlocal asked
            asked = signal is not None and signal.raised()
            return asked

        with ctx.transaction() as session:
            handled = sweep(session, now, ctx.settings, stand_aside=webhook_waits)
        total += handled
        if asked and signal is not None:
            signal.wait_lowered()
        elif handled < BATCH:
            break
    return total
