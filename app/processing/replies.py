"""A reply the page wrote itself, natively on the platform (or the echo of ours).

What such a reply refers to is read in one statement (`targets`): whether it is
already known (the echo of a reply Otklik published, a duplicate), the question of
the message it answers, and our own reply with the same text still waiting for the
outbox to record it. Processing asks once, before it decides whether the reply must
wait for its message (`ingest.process`), and applies it with the same answer; the reply
itself is written by `answered.answer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import raw
from app.directory.snapshots import PageInfo
from app.processing import held
from app.processing import new_question as intake
from app.processing.answered import ANSWERED_COLUMNS, CLOCK_FIELDS, Answered, answer
from app.processing.new_question import Delivery
from app.questions.models import (
    OPEN_STATUSES,
    Message,
    MessageSource,
    Question,
    QuestionStatus,
)
from webhooks import InboundEvent as Event


def _question_of(key: str) -> sa.ScalarSelect[int | None]:
    return (
        select(Message.question_id)
        .where(
            col(Message.page_id) == sa.bindparam("page_id"),
            col(Message.external_id) == sa.bindparam(key),
        )
        .limit(1)
        .scalar_subquery()
    )


_TARGETS = sa.select(
    _question_of("source_key"),
    _question_of("reply_to_key"),
    select(Message.id)
    .where(
        col(Message.question_id) == _question_of("reply_to_key"),
        col(Message.source) == MessageSource.otklik,
        col(Message.external_id).is_(None),
        col(Message.text) == sa.bindparam("text"),
    )
    .order_by(col(Message.id))
    .limit(1)
    .scalar_subquery(),
)
# PostgreSQL, in the same statement: the id of the reply's message, taken now (ids follow
# the order of events), and the question it answers with that question's clocks, as JSON
# (what `answer` reads: `ANSWERED_COLUMNS`, `CLOCK_FIELDS`).
_TARGETS_PG = sa.text(
    "WITH k AS (SELECT"
    " (SELECT question_id FROM message WHERE page_id = :page_id AND external_id = :source_key"
    " LIMIT 1) AS known,"
    " (SELECT question_id FROM message WHERE page_id = :page_id AND external_id = :reply_to_key"
    " LIMIT 1) AS replied)"
    " SELECT k.known, k.replied,"
    " (SELECT m.id FROM message AS m WHERE m.question_id = k.replied AND m.source = :otklik"
    " AND m.external_id IS NULL AND m.text = :text ORDER BY m.id LIMIT 1) AS pending,"
    " nextval(pg_get_serial_sequence('message', 'id')) AS message_id,"
    " (SELECT row_to_json(q) FROM (SELECT "
    + ", ".join(ANSWERED_COLUMNS)
    + " FROM question WHERE id = k.replied) AS q) AS question,"
    " (SELECT json_agg(c ORDER BY c.id) FROM (SELECT "
    + ", ".join(CLOCK_FIELDS)
    + " FROM sla_clock WHERE question_id = k.replied) AS c) AS clocks"
    " FROM k"
)
_TARGETS_READ = raw.Read(_TARGETS_PG)
_OPEN = [str(s) for s in OPEN_STATUSES]
_ANY = [str(s) for s in QuestionStatus]
_THREAD_QUESTION = (
    select(Question.id)
    .where(
        col(Question.page_id) == sa.bindparam("page_id"),
        col(Question.thread_key) == sa.bindparam("thread_key"),
        intake.one_of(col(Question.status), _OPEN),
        col(Question.id).not_in(sa.bindparam("skip", expanding=True)),
    )
    .order_by(col(Question.id).desc())
    .limit(1)
)
_ANY_QUESTION = (
    select(Question.id)
    .where(
        col(Question.page_id) == sa.bindparam("page_id"),
        col(Question.thread_key) == sa.bindparam("thread_key"),
    )
    .limit(1)
)
_PENDING_REPLY = (
    select(Message.id)
    .where(
        col(Message.question_id) == sa.bindparam("question_id"),
        col(Message.source) == MessageSource.otklik,
        col(Message.external_id).is_(None),
        col(Message.text) == sa.bindparam("text"),
    )
    .order_by(col(Message.id))
    .limit(1)
)


# PostgreSQL: the thread's latest open question, our reply waiting on it with the same
# text, and the question with its clocks as JSON (as `_TARGETS_PG`), in one statement.
_THREAD_TARGETS_PG = sa.text(
    "WITH t AS (SELECT id FROM question WHERE page_id = :page_id AND thread_key = :thread_key"
    " AND status IN ("
    + ", ".join(f":open_{n}" for n in range(len(OPEN_STATUSES)))
    + ") AND NOT (id = ANY(CAST(:skip AS integer[]))) ORDER BY id DESC LIMIT 1)"
    " SELECT t.id,"
    " (SELECT m.id FROM message AS m WHERE m.question_id = t.id AND m.source = :otklik"
    " AND m.external_id IS NULL AND m.text = :text ORDER BY m.id LIMIT 1) AS pending,"
    " (SELECT row_to_json(q) FROM (SELECT "
    + ", ".join(ANSWERED_COLUMNS)
    + " FROM question WHERE id = t.id) AS q) AS question,"
    " (SELECT json_agg(c ORDER BY c.id) FROM (SELECT "
    + ", ".join(CLOCK_FIELDS)
    + " FROM sla_clock WHERE question_id = t.id) AS c) AS clocks"
    " FROM t"
)


@dataclass(frozen=True, slots=True)
class Targets:
    known: bool  # the reply itself is already a message: an echo of ours, or a duplicate
    replied: int | None  # the question of the message it answers (`reply_to_key`)
    pending: int | None  # our own reply to that question, with this text, not yet recorded
    message_id: int | None = None  # PostgreSQL: the id for the reply's message
    # PostgreSQL: the `replied` question and its clocks as the database had them
    # (`Answered`), for `answer`
    answered: Answered | None = None


def targets(session: Session, db: sa.Connection, page_id: int, e: Event) -> Targets:
    """What the page's reply `e` refers to, in one statement; messages of the batch that
    are still held (`held`) are looked up there."""
    params = {
        "page_id": page_id,
        "source_key": e.source_key,
        "reply_to_key": e.reply_to_key or "",
        "text": e.text,
    }
    replied_held = held.question_of_key(session, page_id, e.reply_to_key or "")
    if replied_held is not None and held.question(session, replied_held) is None:
        # A held follow-up to a question in the database: a reply of ours may be waiting
        # on that question; read it with the follow-up written.
        held.flush(session)
        replied_held = None
    answered = None
    if db.dialect.name == "postgresql":
        params["otklik"] = MessageSource.otklik.value
        known, replied, pending, message_id, question, clocks = _TARGETS_READ.one(db, params)
        if question is not None:
            answered = Answered.from_json(question, clocks or [])
    else:
        (known, replied, pending), message_id = db.execute(_TARGETS, params).one(), None
    if held.question_of_key(session, page_id, e.source_key) is not None:
        known = True  # the same reply, delivered twice in the batch
    if replied_held is not None:
        # A question of this batch: no reply of ours can be waiting on it yet.
        replied, pending, answered = replied_held, None, None
    return Targets(known is not None, replied, pending, message_id, answered)


def page_reply(
    session: Session,
    page: PageInfo,
    e: Event,
    event: Delivery,
    now: datetime,
    found: Targets | None = None,
) -> None:
    """Apply the page's reply `e`: it answers the question of the message it replies to,
    else the thread's latest open question; our own reply's echo only claims its key.
    `found`: `targets(...)` read already in this transaction, before anything changed."""
    db = intake.connection(session)
    found = found or targets(session, db, page.id, e)
    if found.known:
        return  # the echo of our own published reply, or a duplicate
    question_id, pending_id = found.replied, found.pending
    answered = found.answered
    if question_id is None:
        # The thread's latest open question: a held one of this batch (no reply of ours
        # can be waiting on it yet), else the database's, but for those that replies of
        # the batch answered with held rows (a reply makes an open question answered).
        question_id = held.latest_in_thread(session, page.id, e.thread_key, _OPEN)
        answered = None
        if question_id is None:
            skip = held.answered(session)
            question_id, pending_id, answered = _thread_targets(db, page.id, e, skip)
            if question_id is None:
                return  # the page wrote in a thread with no question: nothing to answer
    if pending_id is not None:
        # The outbox will record it as published; claim the key so it is not counted twice.
        pending = session.get(Message, pending_id)
        assert pending is not None
        pending.external_id = e.source_key
        session.add(pending)
        session.flush()
        return
    answer(session, page, e, event, question_id, now, found.message_id, answered)


def thread_is_new(session: Session, db: sa.Connection, page_id: int, e: Event) -> bool:
    """Has no question ever been opened in `e`'s thread (held in this batch or stored)?
    A page's reply that names no message there is either the page writing first (a
    mailing) or a reply that overtook the citizen's first message on the way."""
    if held.latest_in_thread(session, page_id, e.thread_key, _ANY) is not None:
        return False
    params = {"page_id": page_id, "thread_key": e.thread_key}
    return db.execute(_ANY_QUESTION, params).first() is None


def _thread_targets(
    db: sa.Connection, page_id: int, e: Event, skip: frozenset[int]
) -> tuple[int | None, int | None, Answered | None]:
    """The thread's latest open question but for `skip` (None: there is none), our own
    reply waiting on it with `e`'s text, and on PostgreSQL the question with its clocks
    (one statement)."""
    if db.dialect.name != "postgresql":
        question_id = db.execute(
            _THREAD_QUESTION,
            {"page_id": page_id, "thread_key": e.thread_key, "skip": sorted(skip)},
        ).scalar()
        if question_id is None:
            return None, None, None
        pending = db.execute(_PENDING_REPLY, {"question_id": question_id, "text": e.text})
        return question_id, pending.scalar(), None
    params: dict[str, object] = {
        "page_id": page_id,
        "thread_key": e.thread_key,
        "otklik": MessageSource.otklik.value,
        "text": e.text,
        "skip": sorted(skip),
    }
    params |= {f"open_{n}": status for n, status in enumerate(_OPEN)}
    row = db.execute(_THREAD_TARGETS_PG, params).first()
    if row is None:
        return None, None, None
    answered = (
        Answered.from_json(row.question, row.clocks or []) if row.question is not None else None
    )
    return row.id, row.pending, answered
