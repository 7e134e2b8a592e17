"""PostgreSQL: the rows of a whole batch of events in one statement.

`combined.Writes` makes one event's writes one statement. Within `holding` (the
processor's batch), `send` holds them back instead, and `flush` sends every held
row of the batch as one statement when the batch ends: a new question then costs
one round trip (its lookup), not two, and PostgreSQL plans and starts one
statement for many events' rows.

An event must still see what the events before it wrote. It reads only its own
thread, its author's messages on the page and messages by platform key, so
`before_event` compares what it reads with the marks of what is held, and sends
the held rows first when they meet (a page's reply to a question of the same
batch, the citizen's next message, an edit: about one event in five of the
realistic mix). On SQLite, and when a batch is done again one event at a time,
nothing is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import Session

from app.processing import combined
from webhooks import EventKind
from webhooks import InboundEvent as Event

_HELD = "otklik.held"


class Held:
    """The writes of the events of a batch so far, not yet sent, and the marks of what
    they wrote (strings such as `citizen:page:thread:author`, see `before_event`).

    All data-modifying CTEs of a statement see the same snapshot, so an UPDATE would
    miss a row INSERTed beside it. Updates are only ever of rows the event read, and
    those are never held: reading them sent them first.
    """

    def __init__(self) -> None:
        self.writes = combined.Writes()
        self.marks: set[str] = set()


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


def flush(session: Session) -> None:
    """Send what is held, in one statement."""
    held: Held | None = session.info.get(_HELD)
    if held is not None and held.writes:
        writes, held.writes = held.writes, combined.Writes()
        held.marks.clear()
        writes.send(session.connection())


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


_HOLDABLE = (EventKind.citizen_message, EventKind.page_reply, EventKind.ignored)


def before_event(session: Session, page_id: int, items: list[Event]) -> None:
    """Send the batch's held writes first if this delivery's events may read them
    (`before`). What they read and write, as marks:

    - a citizen's message reads the citizen's open question in the thread, their recent
      messages on the page (spam), messages by key, and the page's replies in the
      thread (which settle the question it may join);
    - a page's reply reads the thread's questions and replies, and messages by key;
    - edits, deletions and the like read through the ORM: anything.
    """
    reads: set[str] = set()
    writes: set[str] = set()
    p = page_id
    for e in items:
        keys = {f"key:{p}:{k}" for k in (e.source_key, e.reply_to_key) if k}
        reads |= keys
        writes.add(f"key:{p}:{e.source_key}")
        if e.kind == EventKind.citizen_message:
            mine = {f"citizen:{p}:{e.thread_key}:{e.author_id}", f"author:{p}:{e.author_id}"}
            reads |= mine | {f"reply:{p}:{e.thread_key}"}
            writes |= mine | {f"question:{p}:{e.thread_key}"}
        elif e.kind == EventKind.page_reply:
            thread = {f"question:{p}:{e.thread_key}", f"reply:{p}:{e.thread_key}"}
            reads |= thread
            writes |= thread
    anything = any(e.kind not in _HOLDABLE for e in items)
    before(session, reads=reads, writes=writes, anything=anything)
