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
from datetime import datetime

from sqlmodel import Session

from app.questions.models import Priority, Question, QuestionStatus
from app.sla import clocks as clock_ops
from app.sla import norms, policies
from app.sla.models import ClockState, SlaClock, Target

ANSWERABLE = clock_ops.ANSWERABLE
ACTIVE = clock_ops.ACTIVE
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
    existing: dict[Target, SlaClock] | None = None,
) -> dict[Target, SlaClock]:
    """(Re)start the clocks; `existing` given means the caller knows them (no lookup, no
    flush: the caller's next flush writes them). Returns every clock of the question."""
    fresh = existing is not None
    policy = clock_ops.policy_of(session, question)
    timezone = policies.institution_timezone(session, question.institution_id)
    if existing is None:
        existing = clock_ops.clocks_of(session, question)
    clocks = dict(existing)
    minutes = policy.first_response_minutes
    if question.priority == Priority.urgent and policy.urgent_first_response_minutes:
        minutes = policy.urgent_first_response_minutes
    start = question.created_at
    first = clocks[Target.first_response] = clock_ops.schedule(
        session,
        question,
        existing.get(Target.first_response),
        Target.first_response,
        start=start,
        minutes=minutes,
        policy=policy,
        timezone=timezone,
    )
    if policy.final_answer_minutes:
        clocks[Target.final_answer] = clock_ops.schedule(
            session,
            question,
            existing.get(Target.final_answer),
            Target.final_answer,
            start=start,
            minutes=policy.final_answer_minutes,
            policy=policy,
            timezone=timezone,
        )
    if question.first_response_at is not None:
        clock_ops.finish(session, first, question.first_response_at)
    if not fresh:
        session.flush()
    return clocks


# --- hooks ----------------------------------------------------------------------


def start_clocks(
    session: Session, question: Question, *, now: datetime, fresh: bool = False
) -> None:
    """Pick the policy version for a new question and start its clocks.

    Stores `question.policy_id` (None: the built-in default) whatever the
    classification; clocks (first response, final answer) start at the citizen's
    platform time `question.created_at` only for questions and complaints that are
    not dismissed. `fresh`: the caller guarantees the question has no clocks yet (it
    was created in this transaction), so none are looked up, and the new clocks are
    left to the session's next flush.
    """
    policy = norms.resolve(session, question.institution_id, question.created_at)
    question.policy_id = policy.id if policy is not None else None
    session.add(question)
    if not fresh:
        if question.classification in ANSWERABLE and question.status in _OPEN:
            _start_all(session, question, now)
        refresh_due(session, question)
        return
    clocks: dict[Target, SlaClock] = {}
    if question.classification in ANSWERABLE and question.status in _OPEN:
        clocks = _start_all(session, question, now, existing=clocks)
    clock_ops.set_due(session, question, clocks)


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


def on_citizen_message(session: Session, question: Question, *, at: datetime) -> None:
    """A citizen's follow-up at platform time `at` joined the question.

    After a response it (re)starts the next-response clock from `at`; a paused
    final-answer clock resumes.
    """
    clocks = clock_ops.clocks_of(session, question)
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
                start=at,
                minutes=policy.next_response_minutes,
                policy=policy,
                timezone=str(first.details.get("timezone") or policies.DEFAULT_TIMEZONE),
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
    session: Session, question: Question, *, old: str, new: str, at: datetime
) -> None:
    """Waiting for the citizen pauses the final-answer clock and leaving it resumes it;
    dismissal and withdrawal stop clocks (state none); closing stops running ones;
    reopening a stopped question restarts its clocks."""
    if old == new:
        return
    clocks = clock_ops.clocks_of(session, question)
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
    session.flush()


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
        details.pop("state_before_pause", None)
        clock.details = details
        clock.state = ClockState.warning if clock.warned_at else ClockState.running
        if clock.breached_at is not None:
            clock.state = ClockState.breached
        clock.check_at = clock_ops.next_check(clock)
        session.add(clock)
    return clocks
