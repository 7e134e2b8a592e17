"""Ingestion: a stored delivery becomes messages on questions.

Parsing is the adapter's; this module threads, records and hands new questions
to routing and SLA. Everything is idempotent: a message is unique per page and
platform key, so replaying an event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

import app.auth.models  # noqa: F401  (the user table: flushes resolve foreign keys to it)
from app.core.crypto import Cipher
from app.directory import service as directory_service
from app.directory import snapshots as directory
from app.directory.snapshots import PageInfo
from app.intake.models import EventStatus, InboundEvent
from app.processing import bounds, combined, held, replies
from app.processing import new_question as intake
from app.processing.new_question import Delivery
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
from app.sla.models import SlaClock, Target
from webhooks import EventKind, Malformed, get_adapter
from webhooks import InboundEvent as Event

log = logging.getLogger("otklik.ingest")

# A follow-up joins the citizen's question in the same thread while it is open,
# or answered within this window (then the next-response clock runs).
FOLLOW_UP_WINDOW = timedelta(days=30)
# Retries of failed processing: 30 s, 1 min, 2 min, ... capped at 1 h, then stop.
MAX_ATTEMPTS = 12


# An edit, deletion or native reply whose message has not arrived waits this many
# seconds before each new try (8 minutes in all), then is recorded as an orphan.
WAITS = (1, 2, 4, 8, 15, 30, 60, 120, 240)
# A page's reply that names no message, in a thread where no question was ever opened,
# waits this many of them (3 s): deliveries sent side by side may come in either order,
# and a page that writes first (a mailing) must not load the retries for 8 minutes.
# Then it is applied as it is: a page's message in a thread with nothing to answer.
NEW_THREAD_WAITS = 2


def parse(session: Session, event: Delivery, cipher: Cipher) -> tuple[PageInfo, list[Event]]:
    """The page of a stored delivery and the events its adapter reads in it."""
    page = directory.page(session, event.page_id)
    if page is None:
        raise LookupError(f"page {event.page_id} is gone")
    secrets = directory_service.page_secrets(page, cipher)
    parsed = get_adapter(event.platform).parse(secrets, event.body, event.received_at)
    return page, [bounds.event(e) for e in parsed]


def thread_locks(session: Session, keys: Iterable[str]) -> None:
    """Take the advisory locks of these threads (`page_id:thread_key`) for the rest of
    the transaction, in one statement and one global order (by lock number), so that
    two transactions never wait on each other's threads in a cycle. PostgreSQL only."""
    ordered = sorted(set(keys))
    if ordered:
        session.connection().execute(_LOCK_THREADS, {"keys": ordered})


_LOCK_THREADS = sa.text(
    "SELECT pg_advisory_xact_lock(h) FROM"
    " (SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k) AS t"
    " ORDER BY h"  # a volatile function in the select list runs after the sort
)


def threads(page: PageInfo, parsed: list[Event]) -> set[str]:
    """The threads a delivery's events belong to, as `thread_locks` names them."""
    return {f"{page.id}:{e.thread_key}" for e in parsed}


def process(
    session: Session,
    event: Delivery,
    *,
    cipher: Cipher,
    now: datetime,
    settled: list[dict[str, Any]] | None = None,
    parsed: tuple[PageInfo, list[Event]] | None = None,
    locked: bool = False,
) -> None:
    """Apply one stored delivery. Raises on failure; the caller records it (mark_failed).

    The outcome goes on the event (an `InboundEvent`) at once; with `settled`, it is
    appended there instead (the values of `SETTLE`, for one UPDATE of many events).
    `parsed`: what `parse` gave, if the caller has it; `locked`: the caller holds the
    advisory locks of the delivery's threads already (PostgreSQL).

    An edit, deletion or native reply whose message is not there yet is not applied:
    the delivery waits (status `waiting`, tried again after `WAITS`), and when the
    waits are over it is applied as far as it can be and kept as `orphaned`, with
    the reason.
    """
    page, items = parsed if parsed is not None else parse(session, event, cipher)
    if not locked and session.get_bind().dialect.name == "postgresql":
        # Events of one thread are applied one at a time across all processes,
        # so two workers never open two questions for one citizen's thread.
        thread_locks(session, threads(page, items))
    held.before_event(session, page.id, items)
    attempts = getattr(event, "attempts", 0) or 0
    found: dict[str, replies.Targets] = {}
    missing, waits = _missing(session, page, items, found, attempts)
    outcome: dict[str, Any] = {
        "event_types": ",".join(sorted({e.raw_type for e in items if e.raw_type}))[:255],
        "processed_at": now,
        "last_error": None,
        "next_attempt_at": None,
        "attempts": attempts,
    }
    if missing is not None and attempts < waits:
        outcome.update(
            status=EventStatus.waiting,
            last_error=missing,
            processed_at=None,
            next_attempt_at=now + timedelta(seconds=WAITS[attempts]),
            attempts=attempts + 1,
        )
    else:
        for item in items:
            apply(session, page, item, event, now, found)
        kinds = {e.kind for e in items}
        outcome["status"] = (
            EventStatus.ignored if kinds <= {EventKind.ignored} else EventStatus.processed
        )
        if missing is not None and waits == len(WAITS):
            outcome.update(status=EventStatus.orphaned, last_error=f"{missing}; ожидание истекло")
    if settled is None:
        assert isinstance(event, InboundEvent)
        _settle(session, event, **outcome)
    else:
        session.flush()  # what fails, fails with its event
        settled.append({"event_id": event.id, **outcome})


def _missing(
    session: Session,
    page: PageInfo,
    items: list[Event],
    found: dict[str, replies.Targets],
    attempts: int,
) -> tuple[str | None, int]:
    """Why the delivery must wait, and how many waits (`WAITS`) it may have: the message
    one of its events refers to is not here (yet). None: everything it refers to is
    known. What page replies refer to is put in `found`, for applying them without
    asking again."""
    db: sa.Connection | None = None
    for n, e in enumerate(items):
        if e.kind == EventKind.page_reply and not e.reply_to_key:
            if attempts >= NEW_THREAD_WAITS:
                continue
            db = db or intake.connection(session)
            if replies.thread_is_new(session, db, page.id, e):
                return "в переписке ещё нет вопроса, на который отвечает страница", NEW_THREAD_WAITS
            continue
        if e.kind not in (EventKind.edit, EventKind.delete, EventKind.restore) and not (
            e.kind == EventKind.page_reply and e.reply_to_key
        ):
            continue
        db = db or intake.connection(session)
        if e.kind == EventKind.page_reply:
            targets = replies.targets(session, db, page.id, e)
            if n == 0:  # a later event may change what the first one found
                found[e.source_key] = targets
            if targets.known or targets.replied is not None:
                continue
            return f"нет сообщения {e.reply_to_key}, на которое отвечает страница", len(WAITS)
        if intake.question_of_key(db, page.id, e.source_key) is not None:
            continue
        if e.kind == EventKind.edit and _context_of_key(db, page.id, e.source_key):
            continue  # an edit of the post the comments are under
        return f"нет сообщения {e.source_key}, к которому относится {e.kind}", len(WAITS)
    return None, len(WAITS)


_CONTEXT_OF_KEY = (
    select(ThreadContext.id)
    .where(
        col(ThreadContext.page_id) == sa.bindparam("page_id"),
        col(ThreadContext.source_key) == sa.bindparam("key"),
    )
    .limit(1)
)


def _context_of_key(db: sa.Connection, page_id: int, key: str) -> bool:
    return db.execute(_CONTEXT_OF_KEY, {"page_id": page_id, "key": key}).first() is not None


SETTLE = (
    sa.update(InboundEvent)
    .where(col(InboundEvent.id) == sa.bindparam("event_id"))
    .values(
        status=sa.bindparam("status"),
        event_types=sa.bindparam("event_types"),
        processed_at=sa.bindparam("processed_at"),
        last_error=sa.bindparam("last_error"),
        next_attempt_at=sa.bindparam("next_attempt_at"),
        attempts=sa.bindparam("attempts"),
    )
)


def _settle(session: Session, event: InboundEvent, **values: Any) -> None:
    """Record the outcome on the event: one prebuilt UPDATE rather than a flush of it.

    The object gets the same values as committed state, as if it had been flushed.
    """
    session.flush()
    if event.id is None or sa.inspect(event).modified:
        for name, value in values.items():
            setattr(event, name, value)
        session.add(event)
        session.flush()
        return
    session.connection().execute(SETTLE, {"event_id": event.id, **values})
    for name, value in values.items():
        set_committed_value(event, name, value)


def mark_failed(session: Session, event_id: int, error: BaseException, now: datetime) -> None:
    """Record a processing failure and schedule a retry with backoff (none for bad payloads)."""
    event = session.get(InboundEvent, event_id)
    if event is None:
        return
    event.attempts += 1
    event.status = EventStatus.failed
    event.last_error = f"{type(error).__name__}: {error}"[:4000]
    retryable = not isinstance(error, Malformed) and event.attempts < MAX_ATTEMPTS
    event.next_attempt_at = (
        now + timedelta(seconds=min(3600, 30 * 2 ** (event.attempts - 1))) if retryable else None
    )
    session.add(event)
    session.flush()


def apply(
    session: Session,
    page: PageInfo,
    e: Event,
    event: Delivery,
    now: datetime,
    found: dict[str, replies.Targets] | None = None,
) -> None:
    """Apply one normalised event of a delivery to the page's questions (idempotent).

    A native reply whose message never came answers the thread's latest open question.
    `found`: what page replies refer to, by their key, as `_missing` read it."""
    if e.kind == EventKind.citizen_message:
        _citizen_message(session, page, e, event, now)
    elif e.kind == EventKind.page_reply:
        replies.page_reply(session, page, e, event, now, (found or {}).get(e.source_key))
    elif e.kind == EventKind.edit:
        _edit(session, page, e, now)
    elif e.kind == EventKind.delete:
        _delete(session, page, e, now)
    elif e.kind == EventKind.restore:
        _restore(session, page, e, now)
    elif e.kind == EventKind.context:
        _context(session, page, e)
    if e.context_text and e.kind == EventKind.citizen_message:
        _context(session, page, e, text=e.context_text)


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


def _citizen_message(
    session: Session, page: PageInfo, e: Event, event: Delivery, now: datetime
) -> None:
    db = intake.connection(session)
    fresh, message_id = None, None
    if e.group_chat:  # no thread of one citizen: every message is a question of its own
        seen, open_id = intake.question_of_key(db, page.id, e.source_key), None
    else:
        seen, open_id, fresh, message_id = intake.seen_or_open(
            db, page.id, e, e.sent_at - FOLLOW_UP_WINDOW
        )
    if seen is not None:
        return  # the same comment delivered twice (double subscription, replay)
    if open_id is None:
        intake.open_question(session, page, e, event, now, fresh)
        return
    # Locked (PostgreSQL): an operator's status change waits for this, or this for it.
    # Its clocks are read in the same statement.
    found = session.execute(_FOLLOWED_UP, {"question_id": open_id}).all()
    question = found[0][0] if found else None
    assert question is not None and question.id is not None
    clocks = {Target(clock.target): clock for _, clock in found if clock is not None}
    if question.status not in (*OPEN_STATUSES, QuestionStatus.answered):
        # Closed (or dismissed) by an operator since it was found: a follow-up to a
        # closed question starts a new one, as it would have a moment later.
        intake.open_question(session, page, e, event, now, None)
        return
    if message_id is None:  # SQLite: the id comes from the INSERT
        message_id = intake.insert_message(
            db, page.id, question.id, e, event, MessageSource.citizen
        )
        intake.record(db, question.id, e.sent_at, [("message", {"message_id": message_id})])
    else:
        # PostgreSQL: the message and its timeline entry in one statement, or held with
        # the batch's rows (`held`): nothing reads them back in this batch unless it
        # sends them first (an edit, a page's reply to this message: `replies.targets`).
        writes = combined.Writes()
        row = intake.message_row(page.id, question.id, e, event, MessageSource.citizen)
        writes.insert(intake.MESSAGES, [{"id": message_id, **row}])
        entry = {"question_id": question.id, "kind": "message", "at": e.sent_at}
        writes.insert(intake.TIMELINE, [{**entry, "data": {"message_id": message_id}}])
        held.send(session, db, writes)
    question.last_citizen_at = max(question.last_citizen_at or e.sent_at, e.sent_at)
    question.updated_at = now
    old = question.status
    if old in (QuestionStatus.answered, QuestionStatus.waiting_citizen):
        question.status = QuestionStatus.in_progress
    session.add(question)
    # The question's changes and both hooks' are written by one flush (the second
    # hook's): one UPDATE of the question with its new deadline.
    with session.no_autoflush:
        if old != question.status:
            clocks = (
                sla_service.on_status_change(
                    session,
                    question,
                    old=str(old),
                    new=str(question.status),
                    at=e.sent_at,
                    clocks=clocks,
                    flush=False,
                )
                or clocks
            )
        sla_service.on_citizen_message(session, question, at=e.sent_at, clocks=clocks)


# A question a citizen's follow-up joins, locked (PostgreSQL), with its clocks.
_FOLLOWED_UP = (
    select(Question, SlaClock)
    .outerjoin(SlaClock, col(SlaClock.question_id) == col(Question.id))
    .where(col(Question.id) == sa.bindparam("question_id"))
    .order_by(col(SlaClock.id))
    .with_for_update(of=Question, key_share=True)  # as its UPDATE takes
    .execution_options(populate_existing=True)
)


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


def _edit(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
    """An edit of a message: its text (the previous one kept), the question's text when
    it is the question's first message, a timeline entry. One read and, on PostgreSQL,
    one statement (not held: edits send what the batch holds first, `held.before_event`,
    and what they write is read back by later events of the batch)."""
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
    entry = {"question_id": message.question_id, "kind": "edited", "at": e.sent_at}
    writes.insert(intake.TIMELINE, [{**entry, "data": {"message_id": message.id}}])
    writes.send(db)
    intake.expire(session, Message, [message.id])
    intake.expire(session, Question, [message.question_id])


def _delete(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
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


def _restore(session: Session, page: PageInfo, e: Event, now: datetime) -> None:
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


def _context(session: Session, page: PageInfo, e: Event, text: str | None = None) -> None:
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
