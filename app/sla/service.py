"""SLA clocks of a question: started, paused, resumed, stopped and settled by its events.

Ingestion, replies, routing and status changes call these hooks; each one keeps
`question.due_at` (the earliest open deadline, the queue's sort key) up to date.
All instants are the platforms' timestamps (UTC-aware); target minutes are
working minutes of the policy's calendar, or wall-clock minutes when the policy
has `working_time=False`. The watcher (`app.sla.watcher`) raises warnings and
breaches from the `check_at` instants set here.

A clock remembers its time basis in `details` (calendar, time zone, warn ratio), so a
transfer to an institution in another time zone never moves a running deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.questions.models import Priority, Question, QuestionStatus
from app.sla import clocks as clock_ops
from app.sla import norms, policies
from app.sla.models import ClockState, SlaClock, Target

ANSWERABLE = clock_ops.ANSWERABLE
ACTIVE = clock_ops.ACTIVE
# The columns of a clock that a response settles (`response_settles`).
FINISHED = clock_ops.FINISHED
UNSETTLED = clock_ops.UNSETTLED
# What other modules use of the clocks, by their old names.
clock_basis = clock_ops.clock_basis
clocks_of = clock_ops.clocks_of
policy_of = clock_ops.policy_of
_STOPPING = (QuestionStatus.dismissed, QuestionStatus.withdrawn, QuestionStatus.closed)
_OPEN = (QuestionStatus.new, QuestionStatus.in_progress, QuestionStatus.waiting_citizen)


# --- helpers ------------------------------------------------------------------


def working_minutes(session: Session, question: Question, start: datetime, end: datetime) -> float:
    """Minutes between two instants in the question's time basis (its clocks', else its policy's)."""
    clocks = clock_ops.clocks_of(session, question)
    clock = clocks.get(Target.first_response) or next(iter(clocks.values()), None)
    if clock is not None:
        return clock_ops.clock_basis(session, clock).between(start, end)
    policy = clock_ops.policy_of(session, question)
    return policies.basis(
        session,
        working_time=policy.working_time,
        calendar_id=policy.calendar_id,
        timezone=policies.institution_timezone(session, question.institution_id),
    ).between(start, end)


def refresh_due(session: Session, question: Question) -> None:
    """Set `question.due_at` to the earliest deadline of its running or breached clocks."""
    clock_ops.set_due(session, question, clock_ops.clocks_of(session, question))
    session.flush()


def _start_all(
    session: Session,
    question: Question,
    now: datetime,
) -> dict[Target, SlaClock]:
    """(Re)start the clocks a question that needs an answer starts with, counting from
    its creation (`clock_ops.first_clocks`). Returns every clock of the question."""
    policy = clock_ops.policy_of(session, question)
    timezone = policies.institution_timezone(session, question.institution_id)
    existing = clock_ops.clocks_of(session, question)
    clocks = dict(existing)
    started = clock_ops.first_clocks(
        session,
        created_at=question.created_at,
        urgent=question.priority == Priority.urgent,
        policy=policy,
        timezone=timezone,
    )
    for target, values in started.items():
        clocks[target] = clock_ops.schedule(session, question, existing.get(target), target, values)
    if question.first_response_at is not None:
        clock_ops.finish(session, clocks[Target.first_response], question.first_response_at)
    session.flush()
    return clocks


@dataclass(frozen=True, slots=True)
class Arrival:
    """What SLA decides for a new question before it is written: its policy version
    (None: the built-in default), its clocks as columns (but the question's id), and
    its `due_at`."""

    policy_id: int | None
    clocks: dict[Target, dict[str, Any]]
    due_at: datetime | None


def arrival(
    session: Session,
    *,
    institution_id: int,
    created_at: datetime,
    classification: str,
    status: str,
    priority: str,
) -> Arrival:
    """The policy version in force for a new question of `institution_id` created at
    `created_at` (the citizen's platform time), whatever its classification; clocks
    (first response, final answer) only for questions and complaints that are open
    (not dismissed at arrival), counting from `created_at`."""
    policy = norms.resolve(session, institution_id, created_at)
    clocks: dict[Target, dict[str, Any]] = {}
    if classification in ANSWERABLE and status in _OPEN:
        clocks = clock_ops.first_clocks(
            session,
            created_at=created_at,
            urgent=priority == Priority.urgent,
            policy=policy or policies.BUILTIN_NORMS,
            timezone=policies.institution_timezone(session, institution_id),
        )
    due_at = clock_ops.earliest_due((c["state"], c["due_at"]) for c in clocks.values())
    return Arrival(policy.id if policy is not None else None, clocks, due_at)


# --- hooks ----------------------------------------------------------------------


def clocks_started(session: Session, question: Question, *, now: datetime) -> None:
    """Start (or restart) the clocks of a question reclassified as needing an answer.

    They count from the citizen's original time; a response already given settles
    the first-response clock at once.
    """
    if question.policy_id is None:
        policy = norms.resolve(session, question.institution_id, question.created_at)
        question.policy_id = policy.id if policy is not None else None
    if question.status in _OPEN or question.status == QuestionStatus.answered:
        _start_all(session, question, now)
    refresh_due(session, question)


def clocks_stopped(session: Session, question: Question, *, at: datetime) -> None:
    """Stop every unsettled clock (state none): the question no longer needs an answer."""
    for clock in clock_ops.clocks_of(session, question).values():
        clock_ops.stop(clock, "reclassified")
        session.add(clock)
    refresh_due(session, question)


def on_citizen_message(
    session: Session,
    question: Question,
    *,
    at: datetime,
    clocks: dict[Target, SlaClock] | None = None,
) -> None:
    """A citizen's follow-up at platform time `at` joined the question.

    After a response it (re)starts the next-response clock from `at`; a paused
    final-answer clock resumes. `clocks`: every clock of the question, if the caller
    read them already (with the question).
    """
    clocks = dict(clocks) if clocks is not None else clock_ops.clocks_of(session, question)
    first = clocks.get(Target.first_response)
    final = clocks.get(Target.final_answer)
    if final is not None and final.state == ClockState.paused:
        clock_ops.resume(session, final, at)
    if first is not None and first.done_at is not None and at > first.done_at:
        policy = clock_ops.policy_of(session, question)
        current = clocks.get(Target.next_response)
        restart = current is None or (
            current.state not in UNSETTLED
            and (current.done_at is None or at > current.done_at)
            and current.details.get("stopped") is None
        )
        if policy.next_response_minutes and restart:
            clocks[Target.next_response] = clock_ops.schedule(
                session,
                question,
                current,
                Target.next_response,
                clock_ops.running(
                    session,
                    start=at,
                    minutes=policy.next_response_minutes,
                    policy=policy,
                    timezone=str(first.details.get("timezone") or policies.DEFAULT_TIMEZONE),
                ),
            )
    clock_ops.set_due(session, question, clocks)
    session.flush()


def on_response(
    session: Session,
    question: Question,
    *,
    at: datetime,
    interim: bool,
    expected_at: datetime | None = None,
) -> None:
    """A public response of the page (through Otklik or native) at platform time `at`.

    Settles the first-response clock (an earlier response found later wins), a
    running next-response clock, and unless `interim` the final-answer clock. An
    interim answer with `expected_at` moves the final-answer deadline to that
    instant, never later than the policy allows. Idempotent for the same `at`.
    """
    clocks = clock_ops.clocks_of(session, question)
    for target in settled_by_response(clocks, at, interim=interim):
        clock_ops.finish(session, clocks[target], at)
    final = clocks.get(Target.final_answer)
    if (
        interim
        and expected_at is not None
        and final is not None
        and final.done_at is None
        and final.state in UNSETTLED
    ):
        _set_expected(session, final, expected_at)
    clock_ops.set_due(session, question, clocks)
    session.flush()


def settled_by_response(
    clocks: Mapping[Target, clock_ops.Clock], at: datetime, *, interim: bool
) -> list[Target]:
    """The clocks a public response at `at` finishes (`on_response`): the first-response
    clock, a running next-response clock, and unless `interim` the final-answer clock."""
    out = []
    first = clocks.get(Target.first_response)
    if first is not None and _settles(first, at):
        out.append(Target.first_response)
    following = clocks.get(Target.next_response)
    if (
        following is not None
        and following.done_at is None
        and following.state in UNSETTLED
        and at >= following.started_at
    ):
        out.append(Target.next_response)
    final = clocks.get(Target.final_answer)
    if not interim and final is not None and final.done_at is None and final.state in UNSETTLED:
        out.append(Target.final_answer)
    return out


def response_settles(
    session: Session, clocks: Mapping[Target, clock_ops.Clock], at: datetime, *, interim: bool
) -> tuple[dict[Target, dict[str, Any]], datetime | None]:
    """`on_response` for a question's clocks read as rows: the new columns (`FINISHED`)
    of the clocks a response at `at` settles, and the question's `due_at` after it."""
    finished = {
        target: clock_ops.finished(session, clocks[target], at)
        for target in settled_by_response(clocks, at, interim=interim)
    }
    due_at = clock_ops.earliest_due(
        (finished[t]["state"] if t in finished else row.state, row.due_at)
        for t, row in clocks.items()
    )
    return finished, due_at


def _settles(first: clock_ops.Clock, at: datetime) -> bool:
    if first.done_at is None:
        return first.state in UNSETTLED
    # A response found later (a delayed native reply) that was given earlier wins.
    return (
        first.state in (ClockState.met, ClockState.missed)
        and first.started_at <= at < first.done_at
    )


def _set_expected(session: Session, clock: SlaClock, expected_at: datetime) -> None:
    details = dict(clock.details)
    bound_raw = details.get("bound_due_at")
    bound = datetime.fromisoformat(bound_raw) if bound_raw else clock.due_at
    if bound is None:
        return
    details["bound_due_at"] = bound.isoformat()
    details["expected_at"] = expected_at.isoformat()
    due = min(expected_at, bound)
    clock.due_at = due
    b = clock_ops.clock_basis(session, clock)
    span = b.between(clock.started_at, due) - float(details.get("paused_working_minutes", 0.0))
    ratio = float(details.get("warn_ratio", policies.BUILTIN.warn_ratio))
    clock.warn_at = min(due, b.add(clock.started_at, max(0.0, span) * ratio))
    clock.details = details
    if clock.state != ClockState.paused:
        clock.check_at = clock_ops.next_check(clock)
    session.add(clock)


def on_status_change(
    session: Session,
    question: Question,
    *,
    old: str,
    new: str,
    at: datetime,
    clocks: dict[Target, SlaClock] | None = None,
    flush: bool = True,
) -> dict[Target, SlaClock] | None:
    """Waiting for the citizen pauses the final-answer clock and leaving it resumes it;
    dismissal and withdrawal stop clocks (state none); closing stops running ones;
    reopening a stopped question restarts its clocks. `clocks`: every clock of the
    question, if the caller read them already. Returns every clock of the question
    after the change (None: no change, nothing read). Not `flush`: the changes are left
    to the caller's next flush (a follow-up's other hook writes them with its own)."""
    if old == new:
        return None
    clocks = dict(clocks) if clocks is not None else clock_ops.clocks_of(session, question)
    final = clocks.get(Target.final_answer)
    if new == QuestionStatus.waiting_citizen and final is not None:
        clock_ops.pause(final, at)
        session.add(final)
    elif old == QuestionStatus.waiting_citizen and final is not None and new not in _STOPPING:
        clock_ops.resume(session, final, at)
    if new in _STOPPING:
        for clock in clocks.values():
            clock_ops.stop(clock, new)
            session.add(clock)
    elif old in _STOPPING and new in _OPEN:
        clocks = _reopen(session, question, clocks, at)
    clock_ops.set_due(session, question, clocks)
    if flush:
        session.flush()
    return clocks


def _reopen(
    session: Session, question: Question, clocks: dict[Target, SlaClock], at: datetime
) -> dict[Target, SlaClock]:
    """Restart the clocks that the stop stopped; returns every clock of the question."""
    if question.classification not in ANSWERABLE:
        return clocks
    stopped = [c for c in clocks.values() if c.state == ClockState.none and c.done_at is None]
    if not clocks:
        return _start_all(session, question, at)
    for clock in stopped:
        details = dict(clock.details)
        details.pop("stopped", None)
        clock.details = details
        if clock.paused_at is not None:
            # Stopped while waiting for the citizen: leave that pause now, so neither the
            # wait nor the time closed counts against the institution.
            clock.state = ClockState.paused
            clock_ops.resume(session, clock, at)
            continue
        details.pop("state_before_pause", None)
        clock.state = ClockState.warning if clock.warned_at else ClockState.running
        if clock.breached_at is not None:
            clock.state = ClockState.breached
        clock.check_at = clock_ops.next_check(clock)
        session.add(clock)
    return clocks
