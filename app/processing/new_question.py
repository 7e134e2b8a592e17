"""A citizen's message that starts a new question, written in one go.

Everything about a new question is decided before anything is written: triage and
routing (`app.routing.arrival.decide`), the SLA policy version and clocks
(`app.sla.service.arrival`), the outgoing webhooks. Then the question, its message,
timeline entries, clocks and outbox rows are inserted without ORM objects or a
flush: on PostgreSQL in one statement (`combined.Writes`; the question's id comes
from its sequence, read with the thread lookup), held back to go with the rows of
the batch's other events (`held`); on SQLite one INSERT per table.
A page's native reply is written the same way (`answer`). Nothing reads these rows back
as objects in the same event; a later event of the same transaction loads them from
the database like any other. This is the one way a question comes to be: tests make
theirs through it too (`tests/factories/questions.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

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
from app.sla import service as sla_service
from app.sla.models import SlaClock, Target
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


def next_id(table: str) -> Any:
    """The next id of `table`'s sequence (PostgreSQL), taken once per statement."""
    return sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table, "id"))).scalar_subquery()


# PostgreSQL: with `_SEEN_OR_OPEN`, and only when the message starts a new question
# (CASE evaluates what its branch needs), that question's id and the citizen's recent
# texts (spam detection). Its rows are then written in one statement (`combined.Writes`).
_RECENT = routing_arrival.RECENT.subquery()
_PAIR = sa.select(
    _QUESTION_OF_KEY.scalar_subquery().label("seen"),
    _OPEN_QUESTION.scalar_subquery().label("open_id"),
).subquery()
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
)
_NEW_QUESTION = sa.select(
    next_id("question"),
    sa.select(sa.func.array_agg(_RECENT.c.text)).scalar_subquery(),
    next_id("message"),
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
    seen, open_id, new_id, recent, message_id = db.execute(_SEEN_OR_OPEN_PG, params).one()
    fresh = Fresh(new_id, list(recent or []), message_id) if new_id is not None else None
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
    db.execute(_INSERT_TIMELINE, _timeline_rows(question_id, at, entries))


def _timeline_rows(
    question_id: int, at: datetime, entries: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
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
    if fresh is not None:
        question_id, recent = fresh.question_id, fresh.recent
        message["id"] = fresh.message_id
    elif db.dialect.name == "postgresql":
        params = routing_arrival.recent_params(
            page_id=page.id, author_id=e.author_id, at=e.sent_at, question_id=0
        )
        question_id, texts, message["id"] = db.execute(_NEW_QUESTION, params).one()
        recent = list(texts or [])
    else:
        recent = routing_arrival.recent_texts(
            db, page_id=page.id, author_id=e.author_id, at=e.sent_at, question_id=0
        )
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
        # Set by a page's reply in the same batch, which settles the held row (`answer`).
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
    if question_id is None:  # SQLite: the id comes from the INSERT
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
    writes.insert(_TIMELINE, _timeline_rows(question_id, e.sent_at, [created, *decision.entries]))
    writes.insert(
        _CLOCK_TABLE,
        [
            {"question_id": question_id, "target": target, **values}
            for target, values in sla.clocks.items()
        ],
    )
    writes.insert(_OUTBOX, outgoing.outbox_rows(session, "question.created", question, now))
    held.send(session, db, writes)
    return question_id


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
    if postgresql:
        assert message_id is not None
        writes.insert(_MESSAGES, [{"id": message_id, **reply}])
    else:
        message_id = insert_message(db, page.id, question_id, e, event, MessageSource.native)
    first_response_at = values.pop("first_response_at")
    settled = _settled(session, e, message_id, values, first_response_at, clocks, now)
    writes.extend(settled.writes)
    for target, changes in settled.clocks.items():
        writes.update(_CLOCK_TABLE, "id", {"id": clocks[target].id, **changes})
    writes.update(_QUESTIONS, "id", {"id": question_id, **settled.question})
    held.send(session, db, writes)
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
    writes.insert(_TIMELINE, _timeline_rows(question_id, e.sent_at, [("response", response)]))
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


def expire(session: Session, model: type[Any], ids: Iterable[int]) -> None:
    """Let the session's objects of these rows, if it has any, read them again."""
    for row_id in ids:
        found = session.identity_map.get(identity_key(model, row_id))
        if found is not None:
            session.expire(found)
