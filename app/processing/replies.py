"""A reply the page wrote itself, natively on the platform (or the echo of ours).

What such a reply refers to is read in one statement (`targets`): whether it is
already known (the echo of a reply Otklik published, a duplicate), the question of
the message it answers, and our own reply with the same text still waiting for the
outbox to record it. Processing asks once, before it decides whether the reply must
wait for its message (`ingest.process`), and applies it with the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.snapshots import PageInfo
from app.processing import held
from app.processing import new_question as intake
from app.processing.new_question import Delivery
from app.questions.models import OPEN_STATUSES, Message, MessageSource, Question
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
# PostgreSQL: and the id of the reply's message, taken now (ids follow the order of events).
_TARGETS_PG = _TARGETS.add_columns(intake.next_id("message"))
_OPEN = [str(s) for s in OPEN_STATUSES]
_THREAD_QUESTION = (
    select(Question.id)
    .where(
        col(Question.page_id) == sa.bindparam("page_id"),
        col(Question.thread_key) == sa.bindparam("thread_key"),
        intake.one_of(col(Question.status), _OPEN),
    )
    .order_by(col(Question.id).desc())
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


@dataclass(frozen=True, slots=True)
class Targets:
    known: bool  # the reply itself is already a message: an echo of ours, or a duplicate
    replied: int | None  # the question of the message it answers (`reply_to_key`)
    pending: int | None  # our own reply to that question, with this text, not yet recorded
    message_id: int | None = None  # PostgreSQL: the id for the reply's message


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
    if db.dialect.name == "postgresql":
        known, replied, pending, message_id = db.execute(_TARGETS_PG, params).one()
    else:
        (known, replied, pending), message_id = db.execute(_TARGETS, params).one(), None
    if held.question_of_key(session, page_id, e.source_key) is not None:
        known = True  # the same reply, delivered twice in the batch
    if replied_held is not None:
        # A question of this batch: no reply of ours can be waiting on it yet.
        replied, pending = replied_held, None
    return Targets(known is not None, replied, pending, message_id)


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
    if question_id is None:
        # The thread's latest open question: a held one of this batch (no reply of ours
        # can be waiting on it yet), else the database's, with what other replies of the
        # batch held for the thread written first (`held.before_event`).
        question_id = held.latest_in_thread(session, page.id, e.thread_key, _OPEN)
        if question_id is None:
            held.before(session, reads=(f"reply:{page.id}:{e.thread_key}",), writes=())
            question_id = db.execute(
                _THREAD_QUESTION, {"page_id": page.id, "thread_key": e.thread_key}
            ).scalar()
            if question_id is None:
                return  # the page wrote in a thread with no question: nothing to answer
            params = {"question_id": question_id, "text": e.text}
            pending_id = db.execute(_PENDING_REPLY, params).scalar()
    if pending_id is not None:
        # The outbox will record it as published; claim the key so it is not counted twice.
        pending = session.get(Message, pending_id)
        assert pending is not None
        pending.external_id = e.source_key
        session.add(pending)
        session.flush()
        return
    intake.answer(session, page, e, event, question_id, now, found.message_id)
