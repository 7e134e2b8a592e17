"""The rows of a whole batch of events in one statement (PostgreSQL), or in one
`executemany` a table (SQLite).

`combined.Writes` makes one event's writes one statement. Within `holding` (the
processor's batch), `send` holds them back instead, and `flush` sends every held
row of the batch as one statement when the batch ends: a new question then costs
one round trip (its lookup), not two, and PostgreSQL plans and starts one
statement for many events' rows.

An event must still see what the events before it wrote. It reads only its own
thread, its author's messages on the page and messages by platform key, so
`before_event` compares what it reads with the marks of what is held, and sends
the held rows first when they meet (the citizen's next message, an edit). A page's
reply to a question of the same batch (one event in nine of the realistic mix) reads
that question, its clocks and the message it answers from the held rows instead
(`question_of_key`, `question`), and settles them there: the rows are changed in
place before they are sent. When a batch is done again one event at a time, nothing
is held.

On SQLite the statements cost no round trip, but each costs the Python of an
`execute`: a new question's five rows went in five statements, now a batch's rows go
in one `executemany` a table and shape. New rows take their ids from `take_id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import object_session
from sqlmodel import Session

from app.intake.models import InboundEvent
from app.processing import combined
from app.questions.models import Message, Question
from app.sla.models import SlaClock
from webhooks import EventKind
from webhooks import InboundEvent as Event

_HELD = "otklik.held"
_QUESTIONS: sa.Table = Question.__table__  # type: ignore[attr-defined]
_CLOCKS: sa.Table = SlaClock.__table__  # type: ignore[attr-defined]
_MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
_DELIVERIES: sa.Table = InboundEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class HeldQuestion:
    """A new question whose rows are held: its row and its clocks' rows, the dicts that
    will be sent (a page's reply in the same batch settles them in place)."""

    row: dict[str, Any]
    clocks: list[dict[str, Any]] = field(default_factory=list)


class Held:
    """The writes of the events of a batch so far, not yet sent, and the marks of what
    they wrote (strings such as `citizen:page:thread:author`, see `before_event`).

    All data-modifying CTEs of a statement see the same snapshot, so an UPDATE would
    miss a row INSERTed beside it, and a row must not be updated twice in one
    statement. Updates are only ever of rows the event read from the database; an
    event that would read or update such a row again sends the held rows first (the
    marks: the message's key, `answered:<question>`). A held row itself is changed
    in place instead (`question`).
    """

    def __init__(self) -> None:
        self.writes = combined.Writes()
        self.marks: set[str] = set()
        # The marks of the event being applied: they stay when the held rows are sent
        # in the middle of it, as its own writes are held after that.
        self.current: set[str] = set()
        self.questions: dict[int, HeldQuestion] = {}  # new questions, by id
        self.keys: dict[tuple[int, str], int] = {}  # (page, message key) -> its question
        # Questions in the database a held reply answered (open no more, `answered`).
        self.answered: set[int] = set()
        self.ids: dict[str, int] = {}  # SQLite: the last id taken of a table (`take_id`)
        self.recount: set[str] = set()  # tables whose largest id to read again

    def note(self, writes: combined.Writes) -> None:
        """Index the new questions, clocks and messages among `writes` (held now)."""
        for row in writes.inserted(_QUESTIONS):
            self.questions[row["id"]] = HeldQuestion(row)
        for row in writes.inserted(_CLOCKS):
            found = self.questions.get(row["question_id"])
            if found is not None:
                found.clocks.append(row)
        for row in writes.inserted(_MESSAGES):
            if row.get("external_id"):
                self.keys[(row["page_id"], row["external_id"])] = row["question_id"]

    def sent(self) -> None:
        self.writes = combined.Writes()
        self.marks = set(self.current)
        self.questions.clear()
        self.keys.clear()
        self.answered.clear()
        # After a flush (and so after a mid-batch commit, which flushes first) others may
        # have written rows: the next id is above theirs and above every id taken, also
        # one taken for a row not held yet (a reply takes its id, then sends the batch's
        # writes before holding its own).
        self.recount = set(self.ids)


@contextmanager
def holding(session: Session) -> Iterator[None]:
    """Within the block, `send` holds the writes back; the block must end with `flush`
    (what is still held when it ends without one is dropped, as by a rollback)."""
    session.info[_HELD] = Held()
    try:
        yield
    finally:
        session.info.pop(_HELD, None)


def send(session: Session, db: sa.Connection, writes: combined.Writes) -> None:
    """Make `writes` now, or hold them back for the batch's one statement (`holding`)."""
    held: Held | None = session.info.get(_HELD)
    if held is None:
        writes.send(db)
    else:
        held.writes.extend(writes)
        held.note(writes)


def take_id(session: Session, db: sa.Connection, table: sa.Table) -> int | None:
    """SQLite, while the batch holds its rows: the id for a new row of `table` (a
    question, a message, a clock), so that rows of the batch can name it before it is
    written.
    The batch's transaction holds SQLite's write lock, so nobody else takes the ids
    above the table's largest; every new question, message and clock of a batch that
    holds takes its id here, a clock the ORM inserts too (`_clock_takes_its_id`): a row
    without one, written later, could take an id given out. After a flush the largest is
    read again, and the next id is above both it and the ids given out. None on
    PostgreSQL (the event's lookup takes ids from the sequences) and when
    nothing is held (the INSERT gives the id)."""
    held: Held | None = session.info.get(_HELD)
    if held is None or db.dialect.name == "postgresql":
        return None
    last = held.ids.get(table.name)
    if last is None or table.name in held.recount:
        stored = db.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
        last = max(last or 0, int(stored))
        held.recount.discard(table.name)
    held.ids[table.name] = last + 1
    return last + 1


@sa.event.listens_for(SlaClock, "before_insert")
def _clock_takes_its_id(_mapper: Any, connection: sa.Connection, clock: SlaClock) -> None:
    """A clock the ORM inserts while the batch holds its rows (a follow-up's next-response
    clock) takes its id here too: held clocks carry ids taken ahead (an overdue arrival's
    alerts name them), and SQLite's own next id could be one of those."""
    session = object_session(clock)
    if clock.id is None and session is not None:
        clock.id = take_id(session, connection, _CLOCKS)  # type: ignore[arg-type]


def flush(session: Session) -> None:
    """Send what is held, in one statement."""
    held: Held | None = session.info.get(_HELD)
    if held is not None and held.writes:
        writes = held.writes
        held.sent()
        writes.send(session.connection())


def settle(session: Session, outcomes: list[dict[str, Any]]) -> None:
    """Hold the outcomes of the batch's deliveries (`ingest.SETTLE`'s values) for the
    held statement: one UPDATE of all of them, not one statement per delivery."""
    held: Held | None = session.info.get(_HELD)
    assert held is not None, "settle is for a batch that holds its writes"
    for outcome in outcomes:
        row = dict(outcome)
        row["id"] = row.pop("event_id")
        held.writes.update(_DELIVERIES, "id", row)


def question_of_key(session: Session, page_id: int, key: str) -> int | None:
    """The question of the page's message with this platform key, if that message is
    held (None: look in the database)."""
    held: Held | None = session.info.get(_HELD)
    return None if held is None else held.keys.get((page_id, key))


def latest_in_thread(
    session: Session, page_id: int, thread_key: str, statuses: Iterable[str]
) -> int | None:
    """The newest held question of the thread in one of `statuses` (None: none is held).
    Held questions are newer than the thread's questions in the database: their ids
    were taken under the thread's lock, after those were written."""
    held: Held | None = session.info.get(_HELD)
    if held is None:
        return None
    wanted = set(statuses)
    found = [
        question_id
        for question_id, q in held.questions.items()
        if q.row["page_id"] == page_id
        and q.row["thread_key"] == thread_key
        and q.row["status"] in wanted
    ]
    return max(found, default=None)


def note_answered(session: Session, question_id: int) -> None:
    """A held reply answers `question_id`, a question in the database (the rows that
    settle it are held): see `answered`."""
    held: Held | None = session.info.get(_HELD)
    if held is not None:
        held.answered.add(question_id)


def answered(session: Session) -> frozenset[int]:
    """The questions in the database that held replies of this batch answered. A page's
    reply that looks for its thread's latest open question leaves these out: it would
    otherwise have to send the held rows first to see them answered."""
    held: Held | None = session.info.get(_HELD)
    return frozenset() if held is None else frozenset(held.answered)


def question(session: Session, question_id: int) -> HeldQuestion | None:
    """The held rows of a new question of this batch (None: it is in the database)."""
    held: Held | None = session.info.get(_HELD)
    return None if held is None else held.questions.get(question_id)


def holds(session: Session, marks: Iterable[str]) -> bool:
    """Does the batch hold writes marked with any of `marks` (`before` would send them)?"""
    held: Held | None = session.info.get(_HELD)
    return held is not None and bool(held.writes) and not held.marks.isdisjoint(marks)


def before(
    session: Session, *, reads: Iterable[str], writes: Iterable[str], anything: bool = False
) -> None:
    """An event is about to read what `reads` marks (or, `anything`, may read any row,
    as an edit through the ORM does): send what is held first if it wrote any of that.
    Then note the marks of what this event may write."""
    held: Held | None = session.info.get(_HELD)
    if held is None:
        return
    if held.writes and (anything or not held.marks.isdisjoint(reads)):
        flush(session)
    held.marks.update(writes)
    held.current.update(writes)


_HOLDABLE = (EventKind.citizen_message, EventKind.page_reply, EventKind.edit, EventKind.ignored)


def before_event(session: Session, page_id: int, items: list[Event]) -> None:
    """Send the batch's held writes first if this delivery's events may read them
    (`before`). What they read and write, as marks:

    - a citizen's message reads the citizen's open question in the thread, their recent
      messages on the page (spam), messages by key, and the page's replies in the
      thread (which settle the question it may join);
    - a page's reply reads messages by key and the question it answers from the held
      rows when they are there (`question_of_key`, `question`), else from the database.
      What the batch holds of a question in the database is another reply's settling
      of it (the mark `answered:<id>`, sent first by `intake.answer`) or a follow-up's
      message (sent first by `replies.targets`). It reads the thread's latest open
      question only when it answers no known message, leaving out those the batch's
      held replies answered (`answered`);
    - an edit reads its message by key (`changes.edit`);
    - deletions and restores read through the ORM: anything.
    """
    reads: set[str] = set()
    writes: set[str] = set()
    p = page_id
    for e in items:
        writes.add(f"key:{p}:{e.source_key}")
        if e.kind == EventKind.citizen_message:
            reads |= {f"key:{p}:{k}" for k in (e.source_key, e.reply_to_key) if k}
            mine = {f"citizen:{p}:{e.thread_key}:{e.author_id}", f"author:{p}:{e.author_id}"}
            reads |= mine | {f"reply:{p}:{e.thread_key}"}
            writes |= mine | {f"question:{p}:{e.thread_key}"}
        elif e.kind == EventKind.page_reply:
            writes |= {f"question:{p}:{e.thread_key}", f"reply:{p}:{e.thread_key}"}
        else:
            reads |= {f"key:{p}:{k}" for k in (e.source_key, e.reply_to_key) if k}
    anything = any(e.kind not in _HOLDABLE for e in items)
    held: Held | None = session.info.get(_HELD)
    if held is not None:
        held.current = set()  # a new event
    before(session, reads=reads, writes=writes, anything=anything)
