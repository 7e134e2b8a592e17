"""A citizen's message that starts a new question, written in one go.

Everything about a new question is decided before anything is written: triage and
routing (`app.routing.arrival.decide`), the SLA policy version and clocks
(`app.sla.service.arrival`), the outgoing webhooks. Then the question, its message,
timeline entries, clocks and outbox rows are inserted with prebuilt Core statements:
one INSERT per table, no ORM objects built, no flush. Nothing reads these rows back
as objects in the same event; a later event of the same transaction loads them from
the database like any other. This is the one way a question comes to be: tests make
theirs through it too (`tests/factories/questions.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from app.directory.snapshots import PageInfo
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
_ANSWERED = sa.select(
    *(Question.__table__.c[name] for name in outgoing.PAYLOAD_COLUMNS),  # type: ignore[attr-defined]
    col(Question.first_response_at),
).where(col(Question.id) == sa.bindparam("question_id"))
_CLOCKS = sa.select(SlaClock.__table__).where(  # type: ignore[attr-defined]
    col(SlaClock.question_id) == sa.bindparam("question_id")
)
_UPDATE_ANSWERED = (
    sa.update(Question)
    .where(col(Question.id) == sa.bindparam("question_id"))
    .values(
        status=sa.bindparam("status"),
        updated_at=sa.bindparam("updated_at"),
        first_response_at=sa.bindparam("first_response_at"),
        due_at=sa.bindparam("due_at"),
    )
)
_UPDATE_FINISHED = (
    sa.update(SlaClock)
    .where(col(SlaClock.id) == sa.bindparam("clock_id"))
    .values({name: sa.bindparam(name) for name in sla_service.FINISHED})
)
_INSERT_QUESTION = sa.insert(Question)
_INSERT_MESSAGE = sa.insert(Message)
_INSERT_TIMELINE = sa.insert(TimelineEntry)
_INSERT_CLOCKS = sa.insert(SlaClock)
_INSERT_OUTBOX = sa.insert(OutboxItem)


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
) -> tuple[int | None, int | None]:
    """In one statement: the question of the page's message with `e`'s key (if there is
    one, `e` is a duplicate), and the question `e` continues: the citizen's latest in
    its thread that is open, or answered, with a message of theirs since `since`."""
    params = {
        "page_id": page_id,
        "key": e.source_key,
        "thread_key": e.thread_key,
        "author_id": e.author_id,
        "since": since,
    }
    row = db.execute(_SEEN_OR_OPEN, params).one()
    return row[0], row[1]


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
    db.execute(
        _INSERT_TIMELINE,
        [{"question_id": question_id, "kind": k, "at": at, "data": d} for k, d in entries],
    )


def open_question(
    session: Session, page: PageInfo, e: Event, event: Delivery, now: datetime
) -> int:
    """Write the new question the citizen's message `e` starts; returns its id."""
    db = connection(session)
    linked_id = question_of_key(db, page.id, e.reply_to_key) if e.reply_to_key else None
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

    inserted = db.execute(_INSERT_QUESTION, question).inserted_primary_key
    assert inserted is not None
    question_id: int = inserted[0]
    question["id"] = question_id
    db.execute(_INSERT_MESSAGE, message_row(page.id, question_id, e, event, MessageSource.citizen))
    created = ("created", {"platform": str(page.platform)})
    record(db, question_id, e.sent_at, [created, *decision.entries])
    if sla.clocks:
        db.execute(
            _INSERT_CLOCKS,
            [
                {"question_id": question_id, "target": target, **values}
                for target, values in sla.clocks.items()
            ],
        )
    outbox = outgoing.outbox_rows(session, "question.created", question, now)
    if outbox:
        db.execute(_INSERT_OUTBOX, outbox)
    return question_id


def answer(
    session: Session,
    page: PageInfo,
    e: Event,
    event: Delivery,
    question_id: int,
    now: datetime,
) -> None:
    """Write the page's own reply `e` to question `question_id` with Core statements:
    the message and its timeline entry, the clocks the response settles
    (`sla.service.on_response`), the question answered, the outgoing webhook.

    The one way a page's native reply is written. The question and its clocks may be
    objects of the session (a reply in the same batch as the question's follow-up, a
    test): the session is flushed first, and those objects are expired after, so they
    read what was written here.
    """
    db = connection(session)
    question = db.execute(_ANSWERED, {"question_id": question_id}).one_or_none()
    if question is None:
        return  # gone: nothing to answer
    clocks = {Target(row.target): row for row in db.execute(_CLOCKS, {"question_id": question_id})}
    message_id = insert_message(db, page.id, question_id, e, event, MessageSource.native)
    old = question.status
    first_response_at = question.first_response_at
    if first_response_at is None or e.sent_at < first_response_at:
        first_response_at = e.sent_at
    status = QuestionStatus.answered if old in OPEN_STATUSES else old
    response = {"source": "native", "message_id": message_id, "author_id": e.author_id}
    record(db, question_id, e.sent_at, [("response", response)])
    finished, due_at = sla_service.response_settles(session, clocks, e.sent_at, interim=False)
    if finished:
        db.execute(
            _UPDATE_FINISHED,
            [{"clock_id": clocks[t].id, **values} for t, values in finished.items()],
        )
    db.execute(
        _UPDATE_ANSWERED,
        {
            "question_id": question_id,
            "status": status,
            "updated_at": now,
            "first_response_at": first_response_at,
            "due_at": due_at,
        },
    )
    if old != status:
        values = {**question._mapping, "status": status}
        outbox = outgoing.outbox_rows(
            session, "question.answered", values, now, {"source": "native"}
        )
        if outbox:
            db.execute(_INSERT_OUTBOX, outbox)
    _expire(session, Question, [question_id])
    _expire(session, SlaClock, [row.id for row in clocks.values()])


def _expire(session: Session, model: type[Any], ids: Iterable[int]) -> None:
    """Let the session's objects of these rows, if it has any, read them again."""
    for row_id in ids:
        found = session.identity_map.get(identity_key(model, row_id))
        if found is not None:
            session.expire(found)
