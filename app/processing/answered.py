"""A page's own reply written: the question it answers settled, with its clocks.

`answer` is the one way a page's native reply (what it refers to is read by `replies`)
is written, the same way as a new question (`new_question`): the message and its
timeline entry, the clocks the response settles (`sla.service.response_settles`), the
question answered, the outgoing webhook, with Core statements and no ORM objects; on
PostgreSQL in one statement (`combined.Writes`), held back to go with the rows of the
batch's other events (`held`). The question and its clocks are read in one statement,
or come read already with the reply's targets (`Answered`); a question of the same
batch whose rows are still held is read and settled in those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.directory.snapshots import PageInfo
from app.processing import combined, held
from app.processing.new_question import (
    Delivery,
    connection,
    expire,
    insert_message,
    message_row,
    next_id,
    timeline_rows,
)
from app.questions import outgoing
from app.questions.models import (
    OPEN_STATUSES,
    Message,
    MessageSource,
    OutboxItem,
    Question,
    QuestionStatus,
    TimelineEntry,
)
from app.sla import service as sla_service
from app.sla.models import SlaClock, Target
from webhooks import InboundEvent as Event

_QUESTIONS = Question.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_TIMELINE = TimelineEntry.__table__  # type: ignore[attr-defined]
_CLOCK_TABLE = SlaClock.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]

# A page's reply: the question it answers with its clocks (one row per clock, or one
# row with no clock), and on PostgreSQL the id of the reply's message.
_CLOCK_FIELDS = (
    "id",
    "target",
    "state",
    "started_at",
    "due_at",
    "done_at",
    "paused_at",
    "paused_seconds",
    "details",
)
CLOCK_FIELDS = _CLOCK_FIELDS
ANSWERED_COLUMNS = (*outgoing.PAYLOAD_COLUMNS, "first_response_at")
_CLOCK_COLUMNS = [_CLOCK_TABLE.c[name].label(f"clock_{name}") for name in _CLOCK_FIELDS]
_ANSWERED_CLOCKS = (
    sa.select(
        *(_QUESTIONS.c[name] for name in outgoing.PAYLOAD_COLUMNS),
        _QUESTIONS.c.first_response_at,
        *_CLOCK_COLUMNS,
    )
    .select_from(_QUESTIONS.outerjoin(_CLOCK_TABLE, _CLOCK_TABLE.c.question_id == _QUESTIONS.c.id))
    .where(_QUESTIONS.c.id == sa.bindparam("question_id"))
    .order_by(_CLOCK_TABLE.c.id)
)
_ANSWERED_CLOCKS_PG = _ANSWERED_CLOCKS.add_columns(next_id("message").label("message_id"))


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class Answered:
    """A question a page's reply answers, and its clocks, as read with the reply's
    targets (`replies.targets`, PostgreSQL): what `answer` would read itself."""

    question: dict[str, Any]  # the columns of `ANSWERED_COLUMNS`
    clocks: dict[Target, _ClockRow]

    @classmethod
    def from_json(cls, question: dict[str, Any], clocks: list[dict[str, Any]]) -> Answered:
        """From the JSON of the question's row and of its clocks' rows."""
        values = dict(question)
        for name in ("created_at", "first_response_at"):
            values[name] = _moment(values[name])
        rows = {
            Target(c["target"]): _ClockRow(
                id=c["id"],
                target=c["target"],
                state=c["state"],
                started_at=datetime.fromisoformat(c["started_at"]),
                due_at=_moment(c["due_at"]),
                done_at=_moment(c["done_at"]),
                paused_at=_moment(c["paused_at"]),
                paused_seconds=float(c["paused_seconds"]),
                details=c["details"] or {},
            )
            for c in clocks
        }
        return cls(values, rows)


def answer(
    session: Session,
    page: PageInfo,
    e: Event,
    event: Delivery,
    question_id: int,
    now: datetime,
    message_id: int | None = None,
    answered: Answered | None = None,
) -> None:
    """Write the page's own reply `e` to question `question_id` with Core statements:
    the message and its timeline entry, the clocks the response settles
    (`sla.service.on_response`), the question answered, the outgoing webhook.
    `message_id`: the id for the reply's message, if the caller took one; `answered`:
    the question and its clocks, if the caller read them (in this transaction, after
    everything the session had to write).

    The one way a page's native reply is written. The question and its clocks may be
    objects of the session (a reply in the same batch as the question's follow-up, a
    test): the session is flushed first, and those objects are expired after, so they
    read what was written here. A question of the same batch whose rows are still held
    (PostgreSQL, `held`) is read and settled there, in its held rows.
    """
    db = connection(session)
    postgresql = db.dialect.name == "postgresql"
    if message_id is None:  # SQLite, a batch that holds its rows
        message_id = held.take_id(session, db, _MESSAGES)
    new = held.question(session, question_id)
    if (
        new is not None
        and message_id is not None
        and _answer_held(session, db, page, e, event, new, now, message_id)
    ):
        return
    # Another reply of the batch may have answered the question with held writes: they
    # go first (`held.before`), and this one's go after them.
    mark = (f"answered:{question_id}",)
    if held.holds(session, mark):
        answered = None  # read before those writes: read again after them
    held.before(session, reads=mark, writes=mark)
    if answered is None:
        read = _ANSWERED_CLOCKS_PG if postgresql and message_id is None else _ANSWERED_CLOCKS
        rows = db.execute(read, {"question_id": question_id}).all()
        if not rows:
            return  # gone: nothing to answer
        question = rows[0]
        clocks = {
            Target(row.clock_target): _ClockRow(
                *(row._mapping[f"clock_{name}"] for name in _CLOCK_FIELDS)
            )
            for row in rows
            if row.clock_id is not None
        }
        values = {name: question._mapping[name] for name in ANSWERED_COLUMNS}
        if message_id is None and postgresql:
            message_id = int(question.message_id)
    else:
        values, clocks = dict(answered.question), answered.clocks
    writes = combined.Writes()
    reply = message_row(page.id, question_id, e, event, MessageSource.native)
    if message_id is not None:
        writes.insert(_MESSAGES, [{"id": message_id, **reply}])
    else:  # SQLite, nothing held: the id comes from the INSERT
        message_id = insert_message(db, page.id, question_id, e, event, MessageSource.native)
    first_response_at = values.pop("first_response_at")
    settled = _settled(session, e, message_id, values, first_response_at, clocks, now)
    writes.extend(settled.writes)
    for target, changes in settled.clocks.items():
        writes.update(_CLOCK_TABLE, "id", {"id": clocks[target].id, **changes})
    writes.update(_QUESTIONS, "id", {"id": question_id, **settled.question})
    held.send(session, db, writes)
    held.note_answered(session, question_id)
    expire(session, Question, [question_id])
    expire(session, SlaClock, [row.id for row in clocks.values()])


@dataclass(frozen=True, slots=True)
class _Settled:
    """What a page's reply changes: the question's columns, the columns of the clocks it
    settles, and the rows it adds (its timeline entry, the outgoing webhooks)."""

    question: dict[str, Any]
    clocks: dict[Target, dict[str, Any]]
    writes: combined.Writes


def _settled(
    session: Session,
    e: Event,
    message_id: int,
    question: dict[str, Any],
    first_response_at: datetime | None,
    clocks: dict[Target, _ClockRow],
    now: datetime,
) -> _Settled:
    """A page's reply `e` (its message `message_id`) to `question` (the columns of
    `outgoing.PAYLOAD_COLUMNS`) with these clocks."""
    question_id = question["id"]
    old = question["status"]
    if first_response_at is None or e.sent_at < first_response_at:
        first_response_at = e.sent_at
    status = QuestionStatus.answered if old in OPEN_STATUSES else old
    writes = combined.Writes()
    response = {"source": "native", "message_id": message_id, "author_id": e.author_id}
    writes.insert(_TIMELINE, timeline_rows(question_id, e.sent_at, [("response", response)]))
    finished, due_at = sla_service.response_settles(session, clocks, e.sent_at, interim=False)
    if old != status:
        values = {**question, "status": status}
        writes.insert(
            _OUTBOX,
            outgoing.outbox_rows(session, "question.answered", values, now, {"source": "native"}),
        )
    changes = {
        "status": status,
        "updated_at": now,
        "first_response_at": first_response_at,
        "due_at": due_at,
    }
    return _Settled(changes, finished, writes)


def _answer_held(
    session: Session,
    db: sa.Connection,
    page: PageInfo,
    e: Event,
    event: Delivery,
    new: held.HeldQuestion,
    now: datetime,
    message_id: int,
) -> bool:
    """`answer` for a question of this batch whose rows are held: read from them, and
    settled in them (the question's row and its clocks' rows are changed in place, the
    reply's rows held beside them). False: the held rows lack a column to set (then
    `answer` goes the usual way)."""
    row = new.row
    by_target = {Target(c["target"]): c for c in new.clocks}
    clocks = {
        target: _ClockRow(0, *(c[name] for name in _CLOCK_FIELDS[1:]))
        for target, c in by_target.items()
    }
    question = {name: row[name] for name in outgoing.PAYLOAD_COLUMNS}
    settled = _settled(session, e, message_id, question, row["first_response_at"], clocks, now)
    if not settled.question.keys() <= row.keys() or any(
        not changes.keys() <= by_target[target].keys() for target, changes in settled.clocks.items()
    ):
        held.flush(session)
        return False
    for target, changes in settled.clocks.items():
        by_target[target].update(changes)
    row.update(settled.question)
    writes = combined.Writes()
    reply = message_row(page.id, row["id"], e, event, MessageSource.native)
    writes.insert(_MESSAGES, [{"id": message_id, **reply}])
    writes.extend(settled.writes)
    held.send(session, db, writes)
    return True


@dataclass(frozen=True, slots=True)
class _ClockRow:
    """A clock as read with the question it belongs to (`sla.clocks.Clock`): the columns
    of `_CLOCK_FIELDS`, in that order."""

    id: int
    target: str
    state: str
    started_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    paused_at: datetime | None
    paused_seconds: float
    details: dict[str, Any]
