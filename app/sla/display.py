"""What a person is shown of a question's SLA: the most urgent clock, and its time left
or overdue in the clock's own time basis (working minutes of its calendar, or wall-clock
minutes for a policy without working time).

The clocks are the rows the JSON API reads (`sla_clock`); the minutes come from the same
`Basis` that set their deadlines (`clocks.clock_basis`), so a page and the API never
disagree about a deadline. The browser never counts down: pages re-render from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.core import bulk
from app.sla import clocks as clock_ops
from app.sla.models import ClockState, SlaClock, Target

# Among clocks in the same state, this order breaks ties of equal deadlines.
_TARGET_ORDER = {Target.first_response: 0, Target.next_response: 1, Target.final_answer: 2}
# Most urgent first: a breach beats a warning beats a running clock (ui.md §3).
_ACTIVE_RANK = {ClockState.breached: 0, ClockState.warning: 1, ClockState.running: 2}


@dataclass(frozen=True, slots=True)
class Urgency:
    """One clock as shown: `state` is a `ClockState` value as of `now` (a running clock
    whose deadline has passed reads `breached` before the watcher gets to it);
    `working_minutes`/`wall_minutes` are the time left (running, warning, paused) or
    overdue (breached), or the time the answer took (met, missed); None without a clock."""

    state: str
    target: str | None = None
    due_at: datetime | None = None
    working_minutes: float | None = None
    wall_minutes: float | None = None
    working_time: bool = True

    @property
    def overdue(self) -> bool:
        return self.state == ClockState.breached


NONE = Urgency(state=ClockState.none)


def _wall(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start) / timedelta(minutes=1))


def _state_now(clock: SlaClock, now: datetime) -> ClockState:
    """A clock's state as of `now`: a running clock past its deadline reads breached
    before the watcher gets to it, past its warning point warning."""
    state = ClockState(clock.state)
    due = clock.due_at
    if state in (ClockState.running, ClockState.warning) and due is not None:
        if due <= now:
            return ClockState.breached
        if state == ClockState.running and clock.warn_at is not None and clock.warn_at <= now:
            return ClockState.warning
    return state


def clock_urgency(session: Session, clock: SlaClock, now: datetime) -> Urgency:
    """One clock as of `now` (UTC-aware)."""
    state = _state_now(clock, now)
    working_time = bool(clock.details.get("working_time", True))
    due = clock.due_at
    left: float | None = None
    wall: float | None = None
    if state in (ClockState.met, ClockState.missed):
        left, wall = clock.working_minutes, clock.wall_minutes
    elif due is not None and state in _TIMED:
        basis = clock_ops.clock_basis(session, clock)
        if state == ClockState.breached:
            left, wall = basis.between(due, now), _wall(due, now)
        elif state == ClockState.paused:
            paused_at = clock.paused_at or now
            left, wall = basis.between(paused_at, due), _wall(paused_at, due)
        else:
            left, wall = basis.between(now, due), _wall(now, due)
    return Urgency(
        state=str(state),
        target=str(clock.target),
        due_at=due,
        working_minutes=left,
        wall_minutes=wall,
        working_time=working_time,
    )


_TIMED = (ClockState.running, ClockState.warning, ClockState.breached, ClockState.paused)


def _pick(clocks: Sequence[SlaClock], now: datetime) -> SlaClock | None:
    """The clock a queue row shows (Chatwoot's `findMostUrgentSLAStatus`): the active one
    nearest to (or furthest past) its deadline, breached before warning before running;
    else a paused one; else the first response's outcome (missed before met). Chosen on
    states and deadlines alone, so only the shown clock's working time is computed."""
    states = [(clock, _state_now(clock, now)) for clock in clocks]
    active = [(c, s) for c, s in states if s in _ACTIVE_RANK]
    if active:
        return min(
            active,
            key=lambda cs: (
                _ACTIVE_RANK[cs[1]],
                cs[0].due_at or now,
                _TARGET_ORDER.get(Target(cs[0].target), 9),
            ),
        )[0]
    paused = [c for c, s in states if s == ClockState.paused]
    if paused:
        return min(paused, key=lambda c: c.due_at or now)
    settled = [(c, s) for c, s in states if s in (ClockState.met, ClockState.missed)]
    for target in (Target.first_response, Target.next_response, Target.final_answer):
        for c, s in settled:
            if c.target == target and s == ClockState.missed:
                return c
    for target in (Target.first_response, Target.next_response, Target.final_answer):
        for c, _ in settled:
            if c.target == target:
                return c
    return None


def most_urgent(session: Session, clocks: Iterable[SlaClock], now: datetime) -> Urgency:
    """The most urgent clock as shown (`_pick`), or NONE without one."""
    chosen = _pick(list(clocks), now)
    return NONE if chosen is None else clock_urgency(session, chosen, now)


def clocks_by_question(session: Session, question_ids: Sequence[int]) -> dict[int, list[SlaClock]]:
    """Every clock of the given questions, in one query."""
    out: dict[int, list[SlaClock]] = {i: [] for i in question_ids}
    if not question_ids:
        return out
    rows = session.exec(
        select(SlaClock).where(bulk.among(session, col(SlaClock.question_id), question_ids))
    )
    for clock in rows:
        out.setdefault(clock.question_id, []).append(clock)
    return out


def urgencies(session: Session, question_ids: Sequence[int], now: datetime) -> dict[int, Urgency]:
    """The most urgent clock of each question (one query for a page of rows)."""
    return {
        qid: most_urgent(session, clocks, now)
        for qid, clocks in clocks_by_question(session, question_ids).items()
    }
