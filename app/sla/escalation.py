"""Warnings, breaches and escalations: when a clock raises them, and what each writes.

A clock's next check (`check_at`) says when to look at it again. Looking at it
(`step`) moves it on by what is due at that instant, up to three moves at once (an
old question can be warned, breached and escalated in one look), and notes each as a
`Raised`. What a raised alert writes is made here too: its timeline entry (unique by
its dedupe key), an in-app alert for each person it reaches (`notify.alert_rows`) and,
for warnings and breaches, the outgoing webhooks.

Two callers look at clocks: the SLA sweep (`app.sla.watcher`), for clocks whose check
came while they ran, and processing, for the clocks of a question that is overdue
when it arrives (`on_arrival`), which are written already moved on, with their alerts,
in the batch's own writes: the sweep never reads them back. That needs the clocks' ids
before they are written (the alerts' dedupe keys name them): PostgreSQL takes them from
the sequence with the event's lookup, SQLite's batches from `held.take_id`. A clock
without one (SQLite, an event applied on its own) is left to the sweep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.questions import outgoing
from app.sla import clocks as clock_ops
from app.sla import notify
from app.sla import recipients as audience
from app.sla.models import ClockState, Target

# After a breach, escalate up the territory chain once this share of the target passed again.
ESCALATE_AFTER = 0.5
LEVEL_OPERATORS, LEVEL_SUPERVISORS, LEVEL_CHAIN = 1, 2, 3

TARGET_RU: dict[str, str] = {
    Target.first_response: "первый ответ",
    Target.next_response: "ответ на уточнение гражданина",
    Target.final_answer: "окончательный ответ",
}


def _excerpt(text: str, size: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _text(kind: str, question: Any, clock: Any, settings: Settings) -> str:
    target = TARGET_RU.get(str(clock.target), str(clock.target))
    head = {
        "warning": f"Срок ответа подходит к концу: {target} до {{due}}",
        "breached": f"Срок ответа нарушен: {target} нужно было дать до {{due}}",
        "escalated": f"Эскалация: нет ответа, {target} нужно было дать до {{due}}",
    }[kind]
    link = f"{settings.base_url.rstrip('/')}/questions/{question.id}"
    return f"{head}. Вопрос №{question.id}: «{_excerpt(question.text)}» {link}"


def _cycle(clock: Any) -> str:
    # A next-response clock restarts on every follow-up: each run has its own alerts.
    return str(int(clock.started_at.timestamp()))


@dataclass(frozen=True, slots=True)
class Raised:
    """A warning, breach or escalation of one clock, as `step` found it due. `clock`
    and `question`: a `SlaClock` and a `Question`, or their columns as attributes."""

    clock: Any
    question: Any
    kind: str
    at: datetime
    due_at: datetime
    data: dict[str, Any]
    key: str
    text: str


def _raise(
    raised: list[Raised],
    clock: Any,
    question: Any,
    kind: str,
    at: datetime,
    now: datetime,
    settings: Settings,
) -> None:
    data = {
        "target": str(clock.target),
        "clock_id": clock.id,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "detected_at": now.isoformat(),
    }
    key = f"sla:{clock.id}:{_cycle(clock)}:{kind}"
    text = _text(kind, question, clock, settings)
    raised.append(Raised(clock, question, kind, at, clock.due_at or at, data, key, text))


def step(
    session: Session,
    clock: Any,
    question: Any,
    now: datetime,
    settings: Settings,
    raised: list[Raised],
) -> None:
    """Move `clock` (a `SlaClock`, or its columns as attributes) on by what is due at
    `now`: warning, breach, escalation, as many as are due; each is added to `raised`."""
    for _ in range(3):
        if clock.check_at is None or clock.check_at > now or clock.due_at is None:
            break
        if clock.state in (ClockState.running, ClockState.warning) and clock.due_at <= now:
            clock.state = ClockState.breached
            clock.breached_at = now
            clock.escalation_level = LEVEL_SUPERVISORS
            basis = clock_ops.clock_basis(session, clock)
            clock.check_at = basis.add(clock.due_at, clock.target_minutes * ESCALATE_AFTER)
            _raise(raised, clock, question, "breached", clock.due_at, now, settings)
        elif clock.state == ClockState.running:
            clock.state = ClockState.warning
            clock.warned_at = now
            clock.escalation_level = LEVEL_OPERATORS
            clock.check_at = clock.due_at
            _raise(raised, clock, question, "warning", clock.warn_at or now, now, settings)
        elif clock.state == ClockState.breached and clock.escalation_level < LEVEL_CHAIN:
            clock.escalation_level = LEVEL_CHAIN
            at = clock.check_at
            clock.check_at = None
            _raise(raised, clock, question, "escalated", at, now, settings)
        else:
            clock.check_at = None


def timeline_rows(raised: Sequence[Raised]) -> list[dict[str, Any]]:
    """The raised alerts' timeline entries, in the order of their keys."""
    return [
        {
            "question_id": r.question.id,
            "kind": f"sla.{r.kind}",
            "at": r.at,
            "actor_id": None,
            "data": r.data,
            "dedupe_key": r.key,
        }
        for r in sorted(raised, key=lambda r: r.key)
    ]


def alerts_and_events(
    session: Session,
    raised: Sequence[Raised],
    recipients: audience.Recipients,
    now: datetime,
    settings: Settings,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of what newly raised alerts send: in-app alerts (warning: the
    institution's operators; breach: they and its supervisors; escalation: the
    supervisors of the territories above) and outgoing webhooks (warnings, breaches)."""
    alerts: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for r in raised:
        institution_id = r.question.institution_id
        level = {"warning": LEVEL_OPERATORS, "breached": LEVEL_SUPERVISORS}.get(r.kind, LEVEL_CHAIN)
        users: list[audience.Recipient] = []
        if level <= LEVEL_SUPERVISORS:
            users += recipients.operators(institution_id)
        if level == LEVEL_SUPERVISORS:
            users += recipients.supervisors(institution_id)
        if level == LEVEL_CHAIN:
            users += recipients.chain_supervisors(institution_id)
        alerts += notify.alert_rows(
            users,
            r.question,
            kind=f"sla.{r.kind}",
            dedupe_key=r.key,
            text=r.text,
            due_at=r.due_at,
            now=now,
            settings=settings,
        )
        if r.kind in ("warning", "breached"):
            values = {name: getattr(r.question, name) for name in outgoing.PAYLOAD_COLUMNS}
            outbox += outgoing.outbox_rows(session, f"sla.{r.kind}", values, now, r.data)
    return alerts, outbox


# --- overdue at arrival ------------------------------------------------------------

_ALERTING = "otklik.sla.alerting"


@dataclass
class _Alerting:
    settings: Settings
    recipients: audience.Recipients


@contextmanager
def alerting(session: Session, settings: Settings) -> Iterator[None]:
    """Within the block, the clocks of a question that is overdue when it arrives are
    moved on, and their alerts raised, as it is written (`on_arrival`). Processing
    opens it for a batch; outside it (a test's question made without settings) such
    clocks wait for the sweep, as any due clock does."""
    session.info[_ALERTING] = _Alerting(settings, audience.Recipients(session))
    try:
        yield
    finally:
        session.info.pop(_ALERTING, None)


@dataclass(frozen=True, slots=True)
class Arrived:
    """What `on_arrival` raised, as rows to insert with the question's."""

    timeline: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    outbox: list[dict[str, Any]]


def on_arrival(
    session: Session, question: dict[str, Any], clocks: Sequence[dict[str, Any]], now: datetime
) -> Arrived | None:
    """Move on the new question's clocks (their columns, ids included, changed in place)
    that are due at `now`, and return the rows their alerts write; None when none is
    due, or outside `alerting` (then the sweep does it)."""
    context: _Alerting | None = session.info.get(_ALERTING)
    due = [c for c in clocks if c["check_at"] is not None and c["check_at"] <= now]
    if context is None or not due or any(c.get("id") is None for c in due):
        return None
    row = SimpleNamespace(**question)
    recipients = context.recipients.bind(session)
    # Everyone the institution's alerts may reach in one read (five queries), not one
    # read a level: built cold, each read took 3.5 ms.
    recipients.prefetch([row.institution_id])
    raised: list[Raised] = []
    for columns in due:
        clock = SimpleNamespace(**columns)
        step(session, clock, row, now, context.settings, raised)
        columns.update(vars(clock))
    alerts, outbox = alerts_and_events(session, raised, recipients, now, context.settings)
    return Arrived(timeline_rows(raised), alerts, outbox)
