"""A question's SLA clocks: loading them, their time basis, and the moves of one clock.

`app.sla.service` drives these from the question's events; each function here changes
only the clock it is given (or, for `set_due`, the question's cached deadline).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.questions.models import Question, QuestionStatus
from app.sla import norms, policies
from app.sla.models import ClockState, SlaClock, Target

# Classifications that need an answer and so start clocks.
ANSWERABLE = ("question", "complaint")
# Clocks with a deadline still ahead of them or passed without an answer.
ACTIVE = (ClockState.running, ClockState.warning, ClockState.breached)
UNSETTLED = (*ACTIVE, ClockState.paused)


class Clock(Protocol):
    """What settling reads of a clock: a `SlaClock`, or a row of the table."""

    @property
    def state(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def done_at(self) -> datetime | None: ...
    @property
    def paused_at(self) -> datetime | None: ...
    @property
    def paused_seconds(self) -> float: ...
    @property
    def details(self) -> dict[str, Any]: ...


def policy_of(session: Session, question: Question) -> norms.Norms:
    """The policy version the question was created under (the built-in default if none)."""
    if question.policy_id is not None:
        policy = norms.versions(session).get(question.policy_id)
        if policy is not None:
            return policy
    return policies.BUILTIN_NORMS


def clock_basis(session: Session, clock: Clock) -> policies.Basis:
    d = clock.details
    return policies.basis(
        session,
        working_time=bool(d.get("working_time", True)),
        calendar_id=d.get("calendar_id"),
        timezone=str(d.get("timezone") or policies.DEFAULT_TIMEZONE),
    )


_CLOCKS_OF = select(SlaClock).where(col(SlaClock.question_id) == sa.bindparam("question_id"))


def clocks_of(session: Session, question: Question) -> dict[Target, SlaClock]:
    rows = session.execute(_CLOCKS_OF, {"question_id": question.id}).scalars()
    return {Target(row.target): row for row in rows}


def next_check(clock: SlaClock) -> datetime | None:
    """When the watcher should next look at the clock (escalations are the watcher's)."""
    if clock.state == ClockState.running:
        if clock.warn_at is not None and clock.due_at is not None and clock.warn_at < clock.due_at:
            return clock.warn_at
        return clock.due_at
    if clock.state == ClockState.warning:
        return clock.due_at
    return clock.check_at if clock.state == ClockState.breached else None


def set_due(session: Session, question: Question, clocks: dict[Target, SlaClock]) -> None:
    question.due_at = earliest_due((c.state, c.due_at) for c in clocks.values())
    session.add(question)


def earliest_due(clocks: Iterable[tuple[str, datetime | None]]) -> datetime | None:
    """A question's `due_at`: the earliest deadline of its running or breached clocks,
    given as (state, due_at)."""
    dues = [due_at for state, due_at in clocks if state in ACTIVE and due_at is not None]
    return min(dues) if dues else None


def running(
    session: Session,
    *,
    start: datetime,
    minutes: int,
    policy: norms.Norms,
    timezone: str,
) -> dict[str, Any]:
    """The columns (but question and target) of a clock (re)started at `start` with a
    fresh deadline: running, nothing measured, paused, warned or breached yet."""
    b = policies.basis(
        session,
        working_time=policy.working_time,
        calendar_id=policy.calendar_id,
        timezone=timezone or policies.DEFAULT_TIMEZONE,
    )
    due_at = b.add(start, minutes)
    warn_at = b.add(start, minutes * policy.warn_ratio)
    return {
        "started_at": start,
        "state": ClockState.running,
        "target_minutes": minutes,
        "details": {
            "working_time": policy.working_time,
            "calendar_id": policy.calendar_id,
            "timezone": timezone,
            "warn_ratio": policy.warn_ratio,
            "paused_working_minutes": 0.0,
        },
        "done_at": None,
        "working_minutes": None,
        "wall_minutes": None,
        "paused_at": None,
        "warned_at": None,
        "breached_at": None,
        "paused_seconds": 0,
        "escalation_level": 0,
        "due_at": due_at,
        "warn_at": warn_at,
        # next_check() of a running clock.
        "check_at": warn_at if warn_at < due_at else due_at,
    }


def schedule(
    session: Session,
    question: Question,
    existing: SlaClock | None,
    target: Target,
    values: dict[str, Any],
) -> SlaClock:
    """(Re)start a clock with the columns `running` gives it."""
    assert question.id is not None
    clock = existing or SlaClock(
        question_id=question.id, target=target, started_at=values["started_at"]
    )
    for name, value in values.items():
        setattr(clock, name, value)
    session.add(clock)
    return clock


def first_clocks(
    session: Session, *, created_at: datetime, urgent: bool, policy: norms.Norms, timezone: str
) -> dict[Target, dict[str, Any]]:
    """The clocks a question that needs an answer starts with, as columns (but the
    question's id): first response (the urgent target for an urgent question, when the
    policy sets one), and final answer when the policy sets one."""
    minutes = policy.first_response_minutes
    if urgent and policy.urgent_first_response_minutes:
        minutes = policy.urgent_first_response_minutes
    out = {
        Target.first_response: running(
            session, start=created_at, minutes=minutes, policy=policy, timezone=timezone
        )
    }
    if policy.final_answer_minutes:
        out[Target.final_answer] = running(
            session,
            start=created_at,
            minutes=policy.final_answer_minutes,
            policy=policy,
            timezone=timezone,
        )
    return out


def finish(session: Session, clock: SlaClock, at: datetime) -> None:
    """Settle a clock answered at `at`: met within the deadline, missed after it."""
    for name, value in finished(session, clock, at).items():
        setattr(clock, name, value)
    session.add(clock)


def finished(session: Session, clock: Clock, at: datetime) -> dict[str, Any]:
    """The columns `finish` changes (`FINISHED`), for a clock or a row of one."""
    b = clock_basis(session, clock)
    # While paused (waiting for the citizen) the clock counts only up to the pause.
    end = clock.paused_at if clock.state == ClockState.paused and clock.paused_at else at
    end = max(end, clock.started_at)
    paused_working = float(clock.details.get("paused_working_minutes", 0.0))
    return {
        "working_minutes": max(0.0, b.between(clock.started_at, end) - paused_working),
        "wall_minutes": max(
            0.0, (end - clock.started_at) / timedelta(minutes=1) - clock.paused_seconds / 60
        ),
        "done_at": at,
        "state": ClockState.met
        if clock.due_at is None or end <= clock.due_at
        else ClockState.missed,
        "paused_at": None,
        "check_at": None,
    }


FINISHED = ("working_minutes", "wall_minutes", "done_at", "state", "paused_at", "check_at")


def pause(clock: SlaClock, at: datetime) -> None:
    if clock.state not in (ClockState.running, ClockState.warning):
        return
    clock.details = {**clock.details, "state_before_pause": str(clock.state)}
    clock.state = ClockState.paused
    clock.paused_at = at
    clock.check_at = None


def resume(session: Session, clock: SlaClock, at: datetime) -> None:
    """Leave the pause; the paused time is added back to the deadline."""
    if clock.state != ClockState.paused or clock.paused_at is None:
        return
    paused_from = clock.paused_at
    at = max(at, paused_from)
    b = clock_basis(session, clock)
    paused_working = b.between(paused_from, at)
    details: dict[str, Any] = dict(clock.details)
    details["paused_working_minutes"] = (
        float(details.get("paused_working_minutes", 0.0)) + paused_working
    )
    clock.paused_seconds += (at - paused_from).total_seconds()
    for attr in ("due_at", "warn_at"):
        value: datetime | None = getattr(clock, attr)
        # A deadline that had passed before the pause stays passed.
        if value is not None and value > paused_from:
            setattr(clock, attr, b.add(value, paused_working))
    bound = details.get("bound_due_at")
    if bound and datetime.fromisoformat(bound) > paused_from:
        details["bound_due_at"] = b.add(datetime.fromisoformat(bound), paused_working).isoformat()
    clock.state = ClockState(details.pop("state_before_pause", ClockState.running))
    clock.details = details
    clock.paused_at = None
    clock.check_at = next_check(clock)
    session.add(clock)


def stop(clock: SlaClock, why: str) -> None:
    if clock.state not in UNSETTLED:
        return
    clock.details = {**clock.details, "stopped": why}
    clock.check_at = None
    # A breach of a question closed unanswered stays a breach; dismissal and
    # withdrawal mean no answer was owed, the breach stays only in breached_at.
    if clock.state != ClockState.breached or why != str(QuestionStatus.closed):
        clock.state = ClockState.none
