"""Ingestion: a stored delivery becomes messages on questions.

Parsing is the adapter's; this module threads, records and hands new questions
to routing and SLA (`new_question`), a page's own replies to `replies`, and edits,
deletions, restores and a thread's context to `changes`; it decides when a delivery
must wait for the message it refers to, and records each delivery's outcome.
Everything is idempotent: a message is unique per page and platform key, so
replaying an event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
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
from app.processing import bounds, changes, combined, held, replies
from app.processing import new_question as intake
from app.processing.new_question import Delivery
from app.questions.models import (
    OPEN_STATUSES,
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
# seconds before each new try (8 minutes in all), then is recorded as an orphan. Most
# came side by side with their message, a few milliseconds ahead: the first try is
# soon (the retry job looks every `jobs.RETRY_LOOK` seconds).
WAITS = (0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240)
# A page's reply that names no message, in a thread where no question was ever opened,
# waits this many of them (3.5 s): deliveries sent side by side may come in either
# order, and a page that writes first (a mailing) must not load the retries for 8
# minutes. Then it is applied as it is: a page's message in a thread with nothing to
# answer.
NEW_THREAD_WAITS = 3


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
        changes.edit(session, page, e, now)
    elif e.kind == EventKind.delete:
        changes.delete(session, page, e, now)
    elif e.kind == EventKind.restore:
        changes.restore(session, page, e, now)
    elif e.kind == EventKind.context:
        changes.record_context(session, page, e)
    if e.context_text and e.kind == EventKind.citizen_message:
        changes.record_context(session, page, e, text=e.context_text)


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
    if message_id is None:  # SQLite, a batch that holds its rows
        message_id = held.take_id(session, db, intake.MESSAGES)
    if message_id is None:  # SQLite, nothing held: the id comes from the INSERT
        message_id = intake.insert_message(
            db, page.id, question.id, e, event, MessageSource.citizen
        )
        intake.record(db, question.id, e.sent_at, [("message", {"message_id": message_id})])
    else:
        # The message and its timeline entry in one statement, or held with
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
