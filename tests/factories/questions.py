"""Questions made the way production makes them.

A question, a citizen's follow-up and a page's native reply are normalised platform
events (`webhooks.InboundEvent`) applied by processing (`app.processing.ingest.apply`),
exactly as a stored delivery's events are. So threading, triage, routing rules, the
SLA policy and clocks and the outgoing webhooks of a test's question are the ones a
webhook would give it: a test wanting an urgent or dismissed question adds the
routing rule that makes it so, one wanting gratitude writes a thank-you.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.directory import snapshots as directory
from app.processing import ingest
from app.processing import new_question as processing
from app.questions.models import Message, Question, TimelineEntry
from tests.factories.directory import make_page
from webhooks import EventKind, InboundEvent, ThreadKind

_seq = itertools.count(1)
CREATED_AT = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
TEXT = "Когда отремонтируют дорогу на ул. Садовой?"
# What only triage, routing and SLA decide: a factory never sets them.
_DECIDED = frozenset(
    {"classification", "classification_rule", "priority", "routed_by_rule_id", "policy_id"}
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The stored delivery an event came in (what processing reads of one)."""

    id: int | None
    platform: str
    page_id: int
    body: bytes
    received_at: datetime


def deliver(
    session: Session,
    page_id: int,
    event: InboundEvent,
    *,
    received_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Apply a normalised event of page `page_id` as processing does; `received_at`
    (default: the event's time) is the delivery's, `now` processing's (default the same)."""
    page = directory.page(session, page_id)
    assert page is not None, f"no page {page_id}"
    received_at = received_at or event.sent_at
    delivery = Delivery(None, str(page.platform), page_id, b"", received_at)
    ingest.apply(session, page, event, delivery, now or received_at)
    session.flush()


def citizen_event(
    *,
    text: str = TEXT,
    sent_at: datetime = CREATED_AT,
    thread_key: str | None = None,
    author_id: str | None = None,
    author_name: str = "Ирина Смирнова",
    kind: str = "comment",
    source_key: str | None = None,
    reply_ref: Mapping[str, str] | None = None,
    **fields: Any,
) -> InboundEvent:
    """A citizen's comment (or message) under a VK wall post, unique unless told."""
    n = next(_seq)
    post = f"-218734591_{n}"
    return InboundEvent(
        kind=EventKind.citizen_message,
        source_key=source_key or f"wall:{post}:{9000 + n}",
        thread_key=thread_key or f"wall:{post}",
        thread_kind=ThreadKind(kind),
        author_id=author_id or str(512348900 + n),
        author_name=author_name,
        text=text,
        sent_at=sent_at,
        reply_ref=dict(
            reply_ref
            or {
                "method": "wall",
                "owner_id": "-218734591",
                "post_id": str(n),
                "comment_id": str(9000 + n),
            }
        ),
        raw_type="wall_reply_new",
        **fields,
    )


def make_question(
    session: Session,
    *,
    page_id: int | None = None,
    institution_id: int | None = None,
    platform: str | None = None,
    text: str = TEXT,
    created_at: datetime = CREATED_AT,
    received_at: datetime | None = None,
    now: datetime | None = None,
    citizen_name: str = "Ирина Смирнова",
    citizen_platform_id: str | None = None,
    thread_key: str | None = None,
    kind: str = "comment",
    source_key: str | None = None,
    reply_ref: Mapping[str, str] | None = None,
    **after: Any,
) -> Question:
    """A new question as a citizen's comment at `created_at` makes it (`deliver`).

    Without `page_id` a page of `institution_id` (or of a new institution) is made.
    `institution_id` other than the page's, and `after` (status, assignee_id, ...),
    are set on the written question, for what no delivery expresses; triage, routing
    and SLA are never overridden (`_DECIDED`).
    """
    decided = _DECIDED & after.keys()
    if decided:
        raise TypeError(f"{sorted(decided)} come from triage, routing and SLA: use text or a rule")
    if page_id is None:
        page = make_page(session, **({"institution_id": institution_id} if institution_id else {}))
        assert page.id is not None
        page_id = page.id
    info = directory.page(session, page_id)
    assert info is not None
    if platform is not None and platform != str(info.platform):
        raise ValueError(f"page {page_id} is on {info.platform}, not {platform}")
    event = citizen_event(
        text=text,
        sent_at=created_at,
        thread_key=thread_key,
        author_id=citizen_platform_id,
        author_name=citizen_name,
        kind=kind,
        source_key=source_key,
        reply_ref=reply_ref,
    )
    deliver(session, page_id, event, received_at=received_at, now=now)
    question_id = processing.question_of_key(session, page_id, event.source_key)
    assert question_id is not None
    question = session.get(Question, question_id)
    assert question is not None and question.created_at == created_at, "joined an older question"
    if institution_id is not None and institution_id != question.institution_id:
        after["institution_id"] = institution_id
    if after:
        for name, value in after.items():
            setattr(question, name, value)
        session.add(question)
        session.flush()
    return question


def first_message(session: Session, question: Question) -> Message:
    """The citizen's message that started the question."""
    found = session.get(Message, _first_message_id(session, question))
    assert found is not None
    return found


def _first_message_id(session: Session, question: Question) -> int:
    found = session.exec(
        select(Message.id)
        .where(col(Message.question_id) == question.id)
        .order_by(col(Message.id))
        .limit(1)
    ).first()
    assert found is not None
    return found


def follow_up(
    session: Session,
    question: Question,
    *,
    at: datetime,
    text: str = "И ещё вопрос",
    now: datetime | None = None,
    **fields: Any,
) -> Message:
    """The citizen writes again in the question's thread at `at` (processing threads it)."""
    event = citizen_event(
        text=text,
        sent_at=at,
        thread_key=question.thread_key,
        author_id=question.citizen_platform_id,
        author_name=question.citizen_name,
        kind=str(question.kind),
        **fields,
    )
    deliver(session, question.page_id, event, now=now)
    session.refresh(question)
    message = session.exec(_by_key(question.page_id, event.source_key)).one()
    assert message.question_id == question.id, "the follow-up started a question of its own"
    return message


def native_reply(
    session: Session,
    question: Question,
    *,
    at: datetime,
    text: str = "Здравствуйте! Ремонт запланирован на май.",
    received_at: datetime | None = None,
    now: datetime | None = None,
) -> Message:
    """The page answers the question's first message on the platform itself at `at`
    (processing records the response: status, clocks, outgoing webhook)."""
    first = first_message(session, question)
    n = next(_seq)
    event = InboundEvent(
        kind=EventKind.page_reply,
        source_key=f"{first.external_id}:reply:{n}",
        thread_key=question.thread_key,
        thread_kind=ThreadKind(str(question.kind)),
        author_id="-218734591",
        author_name="",
        text=text,
        sent_at=at,
        reply_to_key=first.external_id,
        raw_type="wall_reply_new",
    )
    deliver(session, question.page_id, event, received_at=received_at, now=now)
    session.refresh(question)
    return session.exec(_by_key(question.page_id, event.source_key)).one()


def _by_key(page_id: int, key: str) -> SelectOfScalar[Message]:
    return select(Message).where(col(Message.page_id) == page_id, col(Message.external_id) == key)


def timeline_kinds(session: Session, question_id: int | None) -> list[str]:
    """The kinds of the question's timeline entries, sorted."""
    return list(
        session.exec(
            select(TimelineEntry.kind)
            .where(col(TimelineEntry.question_id) == question_id)
            .order_by(col(TimelineEntry.kind))
        ).all()
    )
