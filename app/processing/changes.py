"""What becomes of a message after it came: edits, deletions and restores; and the
post a thread is under (its context).

An edit changes the message's text (the previous ones kept) and, for a question's first
message, the question's text; a deletion of the citizen's last message withdraws a
question nobody answered yet, and a restore brings it back; a `context` event (the
post the comments are under, a chat's root) is kept per thread (`ThreadContext`).
Each is idempotent: a replayed edit, deletion or restore changes nothing. An event
whose message has not arrived yet is not applied until it has: it waits
(`ingest.process`).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.snapshots import PageInfo
from app.processing import combined, held
from app.processing import new_question as intake
from app.questions import timeline
from app.questions.models import (
    OPEN_STATUSES,
    Message,
    MessageSource,
    Question,
    QuestionStatus,
    ThreadContext,
)
from app.sla import service as sla_service
from webhooks import InboundEvent as Event

_MESSAGE_BY_KEY = select(Message).where(
    col(Message.page_id) == sa.bindparam("page_id"),
    col(Message.external_id) == sa.bindparam("key"),
)


def _message_by_key(session: Session, page_id: int, key: str) -> Message | None:
    found: Message | None = (
        session.execute(_MESSAGE_BY_KEY, {"page_id": page_id, "key": key}).scalars().first()
    )
    return found


def _attachments(e: Event) -> list[dict[str, str | None]]:
    return [asdict(a) for a in e.attachments]


# An edited message with the id of its question's first message (whose text is the
# question's): one read.
_FIRST = intake.MESSAGES.alias("first")
_EDITED = sa.select(
    *(intake.MESSAGES.c[name] for name in ("id", "question_id", "text", "attachments")),
    intake.MESSAGES.c.previous_texts,
    sa.select(sa.func.min(_FIRST.c.id))
    .where(_FIRST.c.question_id == intake.MESSAGES.c.question_id)
    .scalar_subquery()
    .label("first_id"),
).where(
    intake.MESSAGES.c.page_id == sa.bindparam("page_id"),
    intake.MESSAGES.c.external_id == sa.bindparam("key"),
)


def edit(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
    """An edit of a message: its text (the previous one kept), the question's text when
    it is the question's first message, a timeline entry. One read; the writes are held
    with the batch's (`held`). The edited message is in the database (had the batch held
    it, `held.before_event` sent it first); a later event of the batch that reads or
    changes it sends the held rows first (its key's mark); a reply that settles the
    question whose text this edit changes, before or after it in the batch, is sent
    apart from it (`answered:<id>`): one statement must not update a row twice."""
    db = intake.connection(session)
    message = db.execute(_EDITED, {"page_id": page.id, "key": e.source_key}).first()
    if message is None:
        context = session.exec(
            select(ThreadContext).where(
                col(ThreadContext.page_id) == page.id, col(ThreadContext.source_key) == e.source_key
            )
        ).first()
        if context is not None:
            context.text = e.text
            session.add(context)
        return
    attachments = _attachments(e)
    if message.text == e.text and attachments == message.attachments:
        return  # a replayed edit
    previous = {"text": message.text, "until": e.sent_at.isoformat()}
    writes = combined.Writes()
    writes.update(
        intake.MESSAGES,
        "id",
        {
            "id": message.id,
            "previous_texts": [*(message.previous_texts or []), previous],
            "text": e.text,
            "attachments": attachments or message.attachments,
            "edited_at": e.sent_at,
        },
    )
    if message.first_id == message.id:
        writes.update(intake.QUESTIONS, "id", {"id": message.question_id, "text": e.text})
        settles = (f"answered:{message.question_id}",)  # another update of the question
        held.before(session, reads=settles, writes=settles)
    entry = {"question_id": message.question_id, "kind": "edited", "at": e.sent_at}
    writes.insert(intake.TIMELINE, [{**entry, "data": {"message_id": message.id}}])
    held.send(session, db, writes)
    intake.expire(session, Message, [message.id])
    intake.expire(session, Question, [message.question_id])


def delete(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
    """A deletion of a message: marked deleted, a timeline entry; a question left with
    no citizen message, open and not answered yet, is withdrawn."""
    message = _message_by_key(session, page.id, e.source_key)
    if message is None or message.deleted_at is not None:
        return
    message.deleted_at = e.sent_at
    session.add(message)
    session.flush()
    question = session.get(
        Question, message.question_id, with_for_update=True, populate_existing=True
    )
    if question is None or question.id is None:
        return
    timeline.record(session, question.id, "deleted", e.sent_at, data={"message_id": message.id})
    remaining = session.exec(
        select(sa.func.count())
        .select_from(Message)
        .where(
            col(Message.question_id) == question.id,
            col(Message.source) == MessageSource.citizen,
            col(Message.deleted_at).is_(None),
        )
    ).one()
    if remaining == 0 and question.first_response_at is None and question.status in OPEN_STATUSES:
        old = question.status
        question.status = QuestionStatus.withdrawn
        question.closed_at = e.sent_at
        session.add(question)
        session.flush()
        timeline.record(session, question.id, "withdrawn", e.sent_at)
        sla_service.on_status_change(
            session, question, old=str(old), new=str(question.status), at=e.sent_at
        )


def restore(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
    """A deleted message back (with its text, if the platform sent one); its question,
    if withdrawn, is new again."""
    message = _message_by_key(session, page.id, e.source_key)
    if message is None or message.deleted_at is None:
        return
    message.deleted_at = None
    if e.text and e.text != message.text:
        message.text = e.text
    session.add(message)
    question = session.get(
        Question, message.question_id, with_for_update=True, populate_existing=True
    )
    if question is not None and question.status == QuestionStatus.withdrawn:
        question.status = QuestionStatus.new
        question.closed_at = None
        session.add(question)
        session.flush()
        sla_service.on_status_change(session, question, old="withdrawn", new="new", at=e.sent_at)
    session.flush()


def record_context(session: Session, page: PageInfo, e: Event, text: str | None = None) -> None:
    """The context of `e`'s thread: `e` itself (a `context` event), or with `text` the
    context a citizen's message came with, kept only if the thread has no text yet."""
    assert page.id is not None
    context = session.exec(
        select(ThreadContext).where(
            col(ThreadContext.page_id) == page.id, col(ThreadContext.thread_key) == e.thread_key
        )
    ).first()
    if context is None:
        context = ThreadContext(page_id=page.id, thread_key=e.thread_key)
    if text is None:
        context.text = e.text
        context.source_key = e.source_key
        context.permalink = e.permalink
        context.posted_at = e.sent_at
    elif not context.text:
        context.text = text
    session.add(context)
    session.flush()
