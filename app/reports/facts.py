"""What each question counts as in the SLA figures, kept as one narrow row per question.

The per-question half of the figures' definitions (the per-group half is
:mod:`app.reports.figures`, which reads these rows):

- `open`: new, in progress or waiting for the citizen; `dismissed` with its reason
  code (unknown codes count as "other");
- `answered`: the question has a public response of the page (`first_response_at`);
  `answered_otklik`: answered, and a reply was written in Otklik;
- `on_time`: its first-response clock was met; `judged`: met, missed or breached (the
  denominator of the on-time rate);
- `breached`: any of its clocks was breached or missed;
- `due_at`: the question's earliest open deadline, as the queue has it; `warn_at`: the
  earliest warning time of its running clocks (an open question not overdue warns now
  once it has passed);
- `first_working`, `first_wall`: the first-response time of a met or missed clock, in
  working minutes (the policy's calendar) and wall-clock minutes;
- a transfer is charged to the institution that held the question, with the time it
  sat there (`report_transfer`).

`day` is the question's local date in the zone of its institution's territory; the
daily rollup (`report_day`) sums the rows per institution, day, page, classification
and dismissal reason.

Keeping them current: triggers (migration `2026-12-06_1900_report_facts`) put a
question in `report_dirty` in the same transaction as any change to its status,
classification, institution, page, deadline, clocks, Otklik replies or transfers. `refresh`
folds the dirty questions in: their fact and transfer rows are computed again from
the sources, and the rollup rows of every (institution, day) they left or entered are
summed again from the facts (`app.reports.fold`). Reports call it before they read,
so figures never lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col

from app.core import bulk
from app.directory.models import Institution, Territory
from app.questions.models import (
    OPEN_STATUSES,
    Direction,
    DismissReason,
    Message,
    MessageSource,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.reports.models import ReportDay, ReportFact, ReportTransfer
from app.sla.models import ClockState, SlaClock, Target


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def local_date(session: Session, instant: Any, timezone: Any) -> Any:
    """The local date of an instant column in the zone named by a text column."""
    if dialect(session) == "postgresql":
        return sa.cast(sa.func.timezone(timezone, instant), sa.Date)
    # SQLite has no zone database: each zone's offset now (Russia keeps no daylight
    # saving time since 2014, so one offset holds for every date since).
    now = datetime.now(UTC)
    zones = [z for (z,) in session.execute(sa.select(col(Territory.timezone)).distinct())]
    shifts = {z: _shift(z, now) for z in zones if z}
    if not shifts:
        return sa.func.date(instant)
    shift = sa.case(*((timezone == z, s) for z, s in shifts.items()), else_="+0 minutes")
    return sa.func.date(instant, shift)


def _shift(zone: str, at: datetime) -> str:
    try:
        offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    except (KeyError, ValueError):
        offset = timedelta(0)
    return f"{int(offset.total_seconds() // 60):+d} minutes"


def fact_rows(session: Session, ids: Sequence[int] | None) -> sa.Select[Any]:
    """The fact row of each question (of `ids`, or of every question)."""
    first = sa.orm.aliased(SlaClock)
    other = sa.orm.aliased(SlaClock)
    breached = (
        sa.select(sa.literal(1))
        .where(
            col(other.question_id) == col(Question.id),
            sa.or_(
                col(other.breached_at).is_not(None),
                col(other.state).in_([str(ClockState.breached), str(ClockState.missed)]),
            ),
        )
        .exists()
    )
    by_otklik = (
        sa.select(sa.literal(1))
        .where(
            col(Message.question_id) == col(Question.id),
            col(Message.direction) == Direction.outbound,
            col(Message.source) == MessageSource.otklik,
        )
        .exists()
    )
    answered = col(Question.first_response_at).is_not(None)
    dismissed = col(Question.status) == QuestionStatus.dismissed
    reason = sa.case(
        (sa.not_(dismissed), ""),
        (
            col(Question.dismiss_reason).in_(list(DismissReason.__members__)),
            Question.dismiss_reason,
        ),
        else_=str(DismissReason.other),
    )
    timed = sa.and_(
        col(first.state).in_([str(ClockState.met), str(ClockState.missed)]),
        col(first.working_minutes).is_not(None),
    )
    judged = [str(s) for s in (ClockState.met, ClockState.missed, ClockState.breached)]
    warns = (
        sa.select(sa.func.min(col(other.warn_at)))
        .where(
            col(other.question_id) == col(Question.id),
            col(other.state).in_([str(ClockState.running), str(ClockState.warning)]),
        )
        .scalar_subquery()
    )
    query = (
        sa.select(
            col(Question.id),
            col(Question.institution_id),
            col(Question.page_id),
            col(Question.classification),
            col(Question.created_at),
            local_date(session, col(Question.created_at), col(Territory.timezone)),
            _bool(col(Question.status).in_([str(s) for s in OPEN_STATUSES])),
            _bool(dismissed),
            reason,
            _bool(answered),
            _bool(sa.and_(answered, by_otklik)),
            _bool(col(first.state) == ClockState.met),
            _bool(col(first.state).in_(judged)),
            _bool(breached),
            col(Question.due_at),
            sa.case((timed, first.working_minutes)),
            sa.case((timed, sa.func.coalesce(col(first.wall_minutes), 0.0))),
            sa.case((col(Question.status).in_([str(s) for s in OPEN_STATUSES]), warns)),
        )
        .select_from(Question)
        .join(Institution, col(Institution.id) == col(Question.institution_id))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .outerjoin(
            first,
            sa.and_(
                col(first.question_id) == col(Question.id),
                col(first.target) == Target.first_response,
            ),
        )
    )
    return query if ids is None else query.where(bulk.among(session, col(Question.id), ids))


def transfer_rows(session: Session, ids: Sequence[int] | None) -> sa.Select[Any]:
    """Each transfer of the questions (of `ids`, or of all): who held it, how long."""
    data = col(TimelineEntry.data)
    holder = data["from_institution_id"].as_integer()
    held = sa.orm.aliased(Institution)
    place = sa.orm.aliased(Territory)
    query = (
        sa.select(
            col(TimelineEntry.id),
            col(TimelineEntry.question_id),
            col(held.id),
            col(Question.page_id),
            col(Question.classification),
            col(Question.created_at),
            local_date(session, col(Question.created_at), col(place.timezone)),
            sa.func.coalesce(data["held_wall_minutes"].as_float(), 0.0),
            sa.func.coalesce(data["held_working_minutes"].as_float(), 0.0),
        )
        .select_from(TimelineEntry)
        .join(Question, col(Question.id) == col(TimelineEntry.question_id))
        .join(held, col(held.id) == holder)
        .join(place, col(place.id) == col(held.territory_id))
        .where(col(TimelineEntry.kind) == "transferred")
    )
    return (
        query
        if ids is None
        else query.where(bulk.among(session, col(TimelineEntry.question_id), ids))
    )


def _bool(condition: Any) -> Any:
    return sa.case((condition, sa.true()), else_=sa.false())


FACT_COLUMNS = [c.name for c in ReportFact.__table__.columns]  # type: ignore[attr-defined]
TRANSFER_COLUMNS = [c.name for c in ReportTransfer.__table__.columns]  # type: ignore[attr-defined]


def insert_facts(session: Session, ids: Sequence[int] | None) -> None:
    fact = ReportFact.__table__  # type: ignore[attr-defined]
    transfer = ReportTransfer.__table__  # type: ignore[attr-defined]
    session.execute(fact.insert().from_select(FACT_COLUMNS, fact_rows(session, ids)))
    session.execute(transfer.insert().from_select(TRANSFER_COLUMNS, transfer_rows(session, ids)))


def days_of(session: Session, ids: Sequence[int]) -> set[tuple[int, Any]]:
    """The (institution, day) pairs the questions' facts and transfers are summed in."""
    facts = sa.select(col(ReportFact.institution_id), col(ReportFact.day)).where(
        bulk.among(session, col(ReportFact.question_id), ids)
    )
    moves = sa.select(col(ReportTransfer.holder_id), col(ReportTransfer.day)).where(
        bulk.among(session, col(ReportTransfer.question_id), ids)
    )
    return {(int(i), d) for i, d in session.execute(sa.union(facts, moves))}


def _flag(column: Any) -> Any:
    return sa.case((column, 1), else_=0)


# The rollup's keys and sums (its last column is the fold's stamp).
DAY_COLUMNS = [c.name for c in ReportDay.__table__.columns if c.name != "stamp"]  # type: ignore[attr-defined]


ADDITIVE = tuple(DAY_COLUMNS[5:])


def counted(when: str, facts: Sequence[Any], moves: Sequence[Any]) -> Any:
    """Every fact and transfer (of those matching `facts` / `moves`) as the ADDITIVE
    counts it adds, one row each: a question counts 1 and its flags, a transfer
    `transferred_out` and the time its holder held it (charged to the holder). The
    columns: institution_id, `when` ("day" or "created_at"), page_id, classification,
    dismiss_reason and the counts; what the rollup sums and what the reports sum
    directly when it cannot answer a period."""
    f, t = ReportFact, ReportTransfer
    zero, nothing = sa.literal(0), sa.literal(0.0)
    flags = [sa.literal(1), *(_flag(getattr(f, k)) for k in ADDITIVE[1:8])]
    fact_rows = sa.select(
        col(f.institution_id).label("institution_id"),
        getattr(f, when).label(when),
        col(f.page_id).label("page_id"),
        col(f.classification).label("classification"),
        col(f.dismiss_reason).label("dismiss_reason"),
        *(v.label(k) for k, v in zip(ADDITIVE[:8], flags, strict=True)),
        zero.label("transferred_out"),
        nothing.label("held_wall_minutes"),
        nothing.label("held_working_minutes"),
    ).where(*facts)
    move_rows = sa.select(
        col(t.holder_id),
        getattr(t, when),
        col(t.page_id),
        col(t.classification),
        sa.literal(""),
        *([zero] * 8),
        sa.literal(1),
        col(t.held_wall_minutes),
        col(t.held_working_minutes),
    ).where(*moves)
    return sa.union_all(fact_rows, move_rows)
