"""A citizen's message that starts a new question, written in one go.

Everything about a new question is decided before anything is written: triage and
routing (`app.routing.arrival.decide`), the SLA policy version and clocks
(`app.sla.service.arrival`), the outgoing webhooks. Then the question, its message,
timeline entries, clocks and outbox rows are inserted without ORM objects or a
flush: on PostgreSQL in one statement (`combined.Writes`; the question's id comes
from its sequence, read with the thread lookup), held back to go with the rows of
the batch's other events (`held`); on SQLite one INSERT per table.
A page's native reply is written the same way (`answered`). Nothing reads these rows
back as objects in the same event; a later event of the same transaction loads them
from the database like any other. This is the one way a question comes to be: tests
make theirs through it too (`tests/factories/questions.py`).

Here too are the row helpers processing shares: the lookups of a citizen's message
(`question_of_key`, `seen_or_open`), a delivered message's row (`message_row`,
`insert_message`), timeline rows, and the session's connection and objects
(`connection`, `expire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from app.auth.models import Notification
from app.core import raw
from app.directory.snapshots import PageInfo
from app.processing import combined, held
from app.questions import outgoing
from app.questions.models import (
    OPEN_STATUSES,
    Direction,
    Message,
    MessageSource,
    OutboxItem,
    Priority,
    Question,
    QuestionKind,
    QuestionStatus,
    TimelineEntry,
)
from app.routing import arrival as routing_arrival
from app.sla import escalation
from app.sla import service as sla_service
from app.sla.models import SlaClock
from webhooks import InboundEvent as Event

_QUESTION_OF_KEY = (
    select(Message.question_id)
    .where(
        col(Message.page_id) == sa.bindparam("page_id"),
        col(Message.external_id) == sa.bindparam("key"),
    )
    .limit(1)
)


def one_of(column: Any, values: Iterable[object]) -> sa.ColumnElement[bool]:
    """`column IN values` as equalities: SQLAlchemy renders an IN list again at every
    execution of a cached statement (~15 us), bound equalities only once."""
    return sa.or_(*(column == value for value in values))


# A citizen's message joins the question in its thread in one of these statuses.
JOINABLE = [str(s) for s in (*OPEN_STATUSES, QuestionStatus.answered)]
_OPEN_QUESTION = (
    select(Question.id)
    .where(
        col(Question.page_id) == sa.bindparam("page_id"),
        col(Question.thread_key) == sa.bindparam("thread_key"),
        col(Question.citizen_platform_id) == sa.bindparam("author_id"),
        one_of(col(Question.status), JOINABLE),
        col(Question.last_citizen_at) >= sa.bindparam("since"),
    )
    .order_by(col(Question.id).desc())
    .limit(1)
)
_SEEN_OR_OPEN = sa.select(_QUESTION_OF_KEY.scalar_subquery(), _OPEN_QUESTION.scalar_subquery())
_INSERT_QUESTION = sa.insert(Question)
_INSERT_MESSAGE = sa.insert(Message)
_INSERT_TIMELINE = sa.insert(TimelineEntry)
_QUESTIONS = QUESTIONS = Question.__table__  # type: ignore[attr-defined]
_MESSAGES = MESSAGES = Message.__table__  # type: ignore[attr-defined]
_TIMELINE = TIMELINE = TimelineEntry.__table__  # type: ignore[attr-defined]
_CLOCK_TABLE = SlaClock.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


def next_id(table: str) -> Any:
    """The next id of `table`'s sequence (PostgreSQL), taken once per statement."""
    return sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table, "id"))).scalar_subquery()


# PostgreSQL: with `_SEEN_OR_OPEN`, and only when the message starts a new question
# (CASE evaluates what its branch needs), that question's id and the citizen's recent
# texts (spam detection). Its rows are then written in one statement (`combined.Writes`).
_RECENT = routing_arrival.RECENT.subquery()
_PAIR = (
    sa.select(
        _QUESTION_OF_KEY.scalar_subquery().label("seen"),
        _OPEN_QUESTION.scalar_subquery().label("open_id"),
    )
    # An OFFSET keeps PostgreSQL from pulling the subquery up into the select list, where
    # each of the CASEs below would run both lookups again (11 index scans instead of 2).
    .offset(0)
    .subquery()
)
_FRESH = sa.and_(_PAIR.c.seen.is_(None), _PAIR.c.open_id.is_(None))
_SEEN_OR_OPEN_PG = sa.select(
    _PAIR.c.seen,
    _PAIR.c.open_id,
    sa.case((_FRESH, sa.func.nextval(sa.func.pg_get_serial_sequence("question", "id")))),
    sa.case((_FRESH, sa.select(sa.func.array_agg(_RECENT.c.text)).scalar_subquery())),
    # The id of the message, unless it is a duplicate.
    sa.case(
        (_PAIR.c.seen.is_(None), sa.func.nextval(sa.func.pg_get_serial_sequence("message", "id")))
    ),
    # Ids for the question's clocks (first response, final answer): an overdue arrival's
    # alerts name them (`escalation.on_arrival`).
    *(
        sa.case((_FRESH, sa.func.nextval(sa.func.pg_get_serial_sequence("sla_clock", "id"))))
        for _ in range(2)
    ),
)
_SEEN_OR_OPEN_READ = raw.Read(_SEEN_OR_OPEN_PG)
_NEW_QUESTION = sa.select(
    next_id("question"),
    sa.select(sa.func.array_agg(_RECENT.c.text)).scalar_subquery(),
    next_id("message"),
    next_id("sla_clock"),
    next_id("sla_clock").label("second_clock"),
)


@dataclass(frozen=True, slots=True)
class Fresh:
    """Read with the lookup of a citizen's message that starts a new question
    (PostgreSQL): the new question's id, the citizen's recent texts, and the id of the
    message. Ids are taken when the event is applied, so that messages' ids follow the
    order of events even when their rows are held and written later (`held`)."""

    question_id: int
    recent: list[str]
    message_id: int
    clock_ids: tuple[int, int]


class Delivery(Protocol):
    """What processing reads of a stored delivery: an `InboundEvent`, or just its columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def platform(self) -> str: ...
    @property
    def page_id(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def received_at(self) -> datetime: ...


def connection(session: Session) -> sa.Connection:
    """The session's connection for Core reads, with whatever the session holds written
    first (what a query of the session itself would autoflush)."""
    session.flush()
    return session.connection()


def question_of_key(db: Session | sa.Connection, page_id: int, key: str) -> int | None:
    """The question of the page's message with this platform key, if there is one."""
    found: int | None = db.execute(_QUESTION_OF_KEY, {"page_id": page_id, "key": key}).scalar()
    return found


def seen_or_open(
    db: sa.Connection, page_id: int, e: Event, since: datetime
) -> tuple[int | None, int | None, Fresh | None, int | None]:
    """In one statement: the question of the page's message with `e`'s key (if there is
    one, `e` is a duplicate), and the question `e` continues: the citizen's latest in
    its thread that is open, or answered, with a message of theirs since `since`.
    Neither (on PostgreSQL): what `open_question` reads for the new question, too.
    Last, on PostgreSQL, the id for `e`'s message (None: a duplicate, or SQLite)."""
    params = {
        "page_id": page_id,
        "key": e.source_key,
        "thread_key": e.thread_key,
        "author_id": e.author_id,
        "since": since,
    }
    if db.dialect.name != "postgresql":
        row = db.execute(_SEEN_OR_OPEN, params).one()
        return row[0], row[1], None, None
    params |= routing_arrival.recent_params(
        page_id=page_id, author_id=e.author_id, at=e.sent_at, question_id=0
    )
    seen, open_id, new_id, recent, message_id, *clocks = _SEEN_OR_OPEN_READ.one(db, params)
    fresh = None
    if new_id is not None:
        fresh = Fresh(new_id, list(recent or []), message_id, (clocks[0], clocks[1]))
    return seen, open_id, fresh, message_id


def message_row(
    page_id: int, question_id: int, e: Event, event: Delivery, source: MessageSource
) -> dict[str, Any]:
    """The columns of a message the platform delivered."""
    return {
        "question_id": question_id,
        "page_id": page_id,
        "direction": Direction.inbound if source == MessageSource.citizen else Direction.outbound,
        "source": source,
        "author_id": e.author_id,
        "author_name": e.author_name,
        "text": e.text,
        "attachments": [asdict(a) for a in e.attachments],
        "sent_at": e.sent_at,
        "received_at": event.received_at,
        "delay_seconds": round((event.received_at - e.sent_at).total_seconds(), 3),
        "external_id": e.source_key,
        "reply_to_key": e.reply_to_key,
        "reply_ref": dict(e.reply_ref),
        "permalink": e.permalink,
    }


def insert_message(
    db: sa.Connection,
    page_id: int,
    question_id: int,
    e: Event,
    event: Delivery,
    source: MessageSource,
) -> int:
    """Write a message the platform delivered; returns its id."""
    row = message_row(page_id, question_id, e, event, source)
    inserted = db.execute(_INSERT_MESSAGE, row).inserted_primary_key
    assert inserted is not None
    message_id: int = inserted[0]
    return message_id


def record(
    db: sa.Connection, question_id: int, at: datetime, entries: list[tuple[str, dict[str, Any]]]
) -> None:
    """Timeline entries (kind, data) of one moment, written at once (no dedupe keys)."""
    db.execute(_INSERT_TIMELINE, timeline_rows(question_id, at, entries))


def timeline_rows(
    question_id: int, at: datetime, entries: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The rows of timeline entries (kind, data) of one moment."""
    return [{"question_id": question_id, "kind": k, "at": at, "data": d} for k, d in entries]


def open_question(
    session: Session,
    page: PageInfo,
    e: Event,
    event: Delivery,
    now: datetime,
    fresh: Fresh | None = None,
) -> int:
    """Write the new question the citizen's message `e` starts; returns its id.
    `fresh`: its id and the citizen's recent texts, if `seen_or_open` read them."""
    db = connection(session)
    linked_id = question_of_key(db, page.id, e.reply_to_key) if e.reply_to_key else None
    question_id: int | None = None
    message: dict[str, Any] = {}  # PostgreSQL: its id
    clock_ids: Sequence[int] = ()  # PostgreSQL: its clocks'
    if fresh is not None:
        question_id, recent = fresh.question_id, fresh.recent
        message["id"], clock_ids = fresh.message_id, fresh.clock_ids
    elif db.dialect.name == "postgresql":
        params = routing_arrival.recent_params(
            page_id=page.id, author_id=e.author_id, at=e.sent_at, question_id=0
        )
        question_id, texts, message["id"], *clock_ids = db.execute(_NEW_QUESTION, params).one()
        recent = list(texts or [])
    else:
        recent = routing_arrival.recent_texts(
            db, page_id=page.id, author_id=e.author_id, at=e.sent_at, question_id=0
        )
        # SQLite, a batch that holds its rows: the ids from `held.take_id`.
        question_id = held.take_id(session, db, _QUESTIONS)
        if question_id is not None:
            message["id"] = held.take_id(session, db, _MESSAGES)
    question: dict[str, Any] = {
        "page_id": page.id,
        "institution_id": page.institution_id,
        "platform": str(page.platform),
        "kind": QuestionKind(str(e.thread_kind)),
        "status": QuestionStatus.new,
        "priority": Priority.normal,
        "citizen_platform_id": e.author_id,
        "citizen_name": e.author_name,
        "thread_key": e.thread_key,
        "text": e.text,
        "permalink": e.permalink,
        "created_at": e.sent_at,
        "received_at": event.received_at,
        "updated_at": now,
        "last_citizen_at": e.sent_at,
        "linked_question_id": linked_id,
        # Set by a page's reply in the same batch, which settles the held row (`answered`).
        "first_response_at": None,
    }
    decision = routing_arrival.decide(
        session,
        page=page,
        institution_id=page.institution_id,
        text=e.text,
        has_attachments=bool(e.attachments),
        attachment_types=[a.type for a in e.attachments],
        recent=recent,
        at=e.sent_at,
    )
    question.update(decision.changes)
    sla = sla_service.arrival(
        session,
        institution_id=question["institution_id"],
        created_at=e.sent_at,
        classification=question["classification"],
        status=question["status"],
        priority=question["priority"],
    )
    question["policy_id"] = sla.policy_id
    question["due_at"] = sla.due_at

    writes = combined.Writes()
    if question_id is None:  # SQLite, nothing held: the id comes from the INSERT
        inserted = db.execute(_INSERT_QUESTION, question).inserted_primary_key
        assert inserted is not None
        question_id = int(inserted[0])
        question["id"] = question_id
    else:
        question["id"] = question_id
        writes.insert(_QUESTIONS, [question])
    writes.insert(
        _MESSAGES,
        [{**message, **message_row(page.id, question_id, e, event, MessageSource.citizen)}],
    )
    created = ("created", {"platform": str(page.platform)})
    writes.insert(_TIMELINE, timeline_rows(question_id, e.sent_at, [created, *decision.entries]))
    if not clock_ids:  # SQLite, a batch that holds its rows: the ids from `held.take_id`
        taken = [held.take_id(session, db, _CLOCK_TABLE) for _ in sla.clocks]
        clock_ids = [i for i in taken if i is not None]
    clocks = [
        {**({"id": clock_ids[n]} if clock_ids else {}), "question_id": question_id, "target": t}
        | values
        for n, (t, values) in enumerate(sla.clocks.items())
    ]
    # Already overdue: its clocks go in moved on (warned, breached, escalated), with
    # their alerts, instead of waiting for the SLA sweep to read them back.
    overdue = escalation.on_arrival(session, question, clocks, now)
    writes.insert(_CLOCK_TABLE, clocks)
    writes.insert(_OUTBOX, outgoing.outbox_rows(session, "question.created", question, now))
    if overdue is not None:
        writes.insert(_TIMELINE, overdue.timeline)
        writes.insert(_NOTIFICATIONS, overdue.alerts)
        writes.insert(_OUTBOX, overdue.outbox)
    held.send(session, db, writes)
    return question_id


def expire(session: Session, model: type[Any], ids: Iterable[int]) -> None:
    """Let the session's objects of these rows, if it has any, read them again."""
    for row_id in ids:
        found = session.identity_map.get(identity_key(model, row_id))
        if found is not None:
            session.expire(found)
