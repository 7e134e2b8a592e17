"""Inbound events, questions, messages, the timeline, the outbox and canned responses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core import snapshots
from app.core.db import EnumText, UTCDateTime, utcnow


class QuestionKind(StrEnum):
    comment = "comment"
    message = "message"


class QuestionStatus(StrEnum):
    new = "new"
    in_progress = "in_progress"
    waiting_citizen = "waiting_citizen"
    answered = "answered"
    closed = "closed"
    dismissed = "dismissed"
    withdrawn = "withdrawn"


OPEN_STATUSES = (QuestionStatus.new, QuestionStatus.in_progress, QuestionStatus.waiting_citizen)

STATUS_NAMES_RU: dict[QuestionStatus, str] = {
    QuestionStatus.new: "Новый",
    QuestionStatus.in_progress: "В работе",
    QuestionStatus.waiting_citizen: "Ждёт гражданина",
    QuestionStatus.answered: "Отвечен",
    QuestionStatus.closed: "Закрыт",
    QuestionStatus.dismissed: "Снят",
    QuestionStatus.withdrawn: "Отозван",
}


class Priority(StrEnum):
    normal = "normal"
    urgent = "urgent"


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"


class MessageSource(StrEnum):
    citizen = "citizen"
    otklik = "otklik"
    native = "native"
    note = "note"  # an internal note: never published, never a response


class DismissReason(StrEnum):
    spam = "spam"
    gratitude = "gratitude"
    off_topic = "off_topic"
    duplicate = "duplicate"
    formal_appeal = "formal_appeal"
    other = "other"


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class OutboxKind(StrEnum):
    reply = "reply"
    webhook = "webhook"


class ThreadContext(SQLModel, table=True):
    """What a comment thread is about: the page's post, kept for operators."""

    __tablename__ = "thread_context"
    __table_args__ = (sa.UniqueConstraint("page_id", "thread_key"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="page.id")
    thread_key: str = Field(max_length=255)
    source_key: str | None = Field(default=None, max_length=255)
    text: str = Field(default="", sa_type=sa.Text)
    permalink: str | None = Field(default=None, max_length=1000)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Question(SQLModel, table=True):
    __table_args__ = (
        # Threading: a citizen's open question in one thread of one page.
        sa.Index("ix_question_thread", "page_id", "thread_key", "citizen_platform_id"),
        sa.Index("ix_question_created", "created_at"),
        # Reports at scale (bench/reports.py): a period's questions of the institutions
        # in scope, from the index alone; each page's newest question; an institution's
        # open questions with what the queue sorts, counts and shows.
        sa.Index(
            "ix_question_institution_created",
            "institution_id",
            "created_at",
            "status",
            "classification",
            "first_response_at",
            "page_id",
        ),
        sa.Index("ix_question_page_created", "page_id", "created_at"),
        # The queue: an institution's open questions by due time (and, from the index
        # alone, what the queue sorts, counts and shows).
        sa.Index(
            "ix_question_open_queue",
            "institution_id",
            "status",
            "due_at",
            "classification",
            "assignee_id",
            "created_at",
            "updated_at",
        ),
        # Citizens' names (questions/citizens.py): the VK questions still showing an id.
        sa.Index(
            "ix_question_unnamed",
            "citizen_platform_id",
            postgresql_where=sa.text("citizen_name = '' AND platform = 'vk'"),
            sqlite_where=sa.text("citizen_name = '' AND platform = 'vk'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="page.id")
    institution_id: int = Field(foreign_key="institution.id")
    platform: str = Field(max_length=20)
    kind: QuestionKind = Field(sa_type=EnumText(QuestionKind))
    status: QuestionStatus = Field(default=QuestionStatus.new, sa_type=EnumText(QuestionStatus))
    classification: str = Field(default="question", max_length=20, index=True)
    classification_rule: str = Field(default="", max_length=100)
    classification_note: str = Field(default="", max_length=500)
    category_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    priority: Priority = Field(default=Priority.normal, sa_type=EnumText(Priority))
    citizen_platform_id: str = Field(default="", max_length=255)
    citizen_name: str = Field(default="", max_length=255)
    thread_key: str = Field(max_length=255)
    text: str = Field(default="", sa_type=sa.Text)
    permalink: str | None = Field(default=None, max_length=1000)
    # The citizen's platform time of the first message; clocks start here.
    created_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_citizen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assignee_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    # Another citizen's reply in someone's comment thread links to that question.
    linked_question_id: int | None = Field(default=None, foreign_key="question.id")
    dismiss_reason: str | None = Field(default=None, max_length=40)
    dismiss_note: str | None = Field(default=None, max_length=1000)
    policy_id: int | None = Field(default=None, foreign_key="sla_policy.id")
    # Earliest open SLA deadline: the queue's sort key ("oldest-due first").
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    interim_expected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    routed_by_rule_id: int | None = Field(default=None, foreign_key="routing_rule.id")


class Message(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("page_id", "external_id"),
        sa.Index("ix_message_question_sent", "question_id", "sent_at"),
        # Spam detection: a citizen's latest messages on a page (routing/arrival.py).
        sa.Index("ix_message_page_author_sent", "page_id", "author_id", "sent_at"),
        # Reports: whether a question was answered through Otklik, from the index.
        sa.Index("ix_message_question_source", "question_id", "source", "direction"),
        # Citizens' names (questions/citizens.py): the messages still showing an id.
        sa.Index(
            "ix_message_unnamed",
            "author_id",
            postgresql_where=sa.text("author_name = '' AND direction = 'in'"),
            sqlite_where=sa.text("author_name = '' AND direction = 'in'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id")
    page_id: int = Field(foreign_key="page.id")
    direction: Direction = Field(sa_type=EnumText(Direction))
    source: MessageSource = Field(sa_type=EnumText(MessageSource))
    author_id: str = Field(default="", max_length=255)
    author_name: str = Field(default="", max_length=255)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    text: str = Field(default="", sa_type=sa.Text)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    # Platform time; for our own replies, the time the platform accepted it.
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Seconds between the platform's timestamp and our receipt.
    delay_seconds: float | None = None
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    previous_texts: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    # The platform's natural key (InboundEvent.source_key); null until published.
    external_id: str | None = Field(default=None, max_length=255)
    reply_to_key: str | None = Field(default=None, max_length=255)
    reply_ref: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    permalink: str | None = Field(default=None, max_length=1000)
    interim: bool = False


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entry"
    __table_args__ = (
        sa.Index("ix_timeline_entry_question_at", "question_id", "at"),
        # SLA warnings and breaches are recorded exactly once, whatever races.
        sa.UniqueConstraint("dedupe_key"),
        # Reports: the transfers of a period without reading every entry.
        sa.Index("ix_timeline_entry_kind_question", "kind", "question_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(max_length=40)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    dedupe_key: str | None = Field(default=None, max_length=255)


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox_item"
    __table_args__ = (sa.Index("ix_outbox_item_status_next", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: OutboxKind = Field(default=OutboxKind.reply, sa_type=EnumText(OutboxKind))
    question_id: int | None = Field(default=None, foreign_key="question.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    page_id: int | None = Field(default=None, foreign_key="page.id")
    subscription_id: int | None = Field(default=None, foreign_key="webhook_subscription.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_type=EnumText(OutboxStatus))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    external_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CitizenName(SQLModel, table=True):
    """A citizen's name looked up on a platform that sends only ids (VK `users.get`),
    cached so one citizen is asked for once per `app.questions.citizens.NAME_TTL`."""

    __tablename__ = "citizen_name"
    __table_args__ = (sa.UniqueConstraint("platform", "platform_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    platform_id: str = Field(max_length=255)
    name: str = Field(default="", max_length=255)  # "": the platform gave none
    checked_at: datetime = Field(sa_type=UTCDateTime)
    # Until then the name (or its absence) stands; then it is asked for again.
    next_check_at: datetime = Field(sa_type=UTCDateTime)


class WebhookSubscription(SQLModel, table=True):
    """An outgoing webhook: events signed with HMAC, delivered through the outbox."""

    __tablename__ = "webhook_subscription"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=1000)
    secret_enc: str | None = Field(default=None, sa_type=sa.Text)
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- API shapes -------------------------------------------------------------


class CitizenRead(SQLModel):
    platform_id: str
    name: str


class ClockRead(SQLModel):
    due_at: datetime | None = None
    state: str = "none"
    done_at: datetime | None = None
    working_minutes: float | None = None
    wall_minutes: float | None = None


class SlaRead(SQLModel):
    first_response: ClockRead = Field(default_factory=ClockRead)
    next_response: ClockRead = Field(default_factory=ClockRead)
    final_answer: ClockRead = Field(default_factory=ClockRead)


class QuestionRead(SQLModel):
    id: int
    page_id: int
    institution_id: int
    platform: str
    kind: str
    status: str
    classification: str
    classification_rule: str
    category: str | None = None
    category_id: int | None = None
    priority: str
    citizen: CitizenRead
    text: str
    created_at: datetime
    received_at: datetime
    permalink: str | None
    assignee_id: int | None
    linked_question_id: int | None = None
    dismiss_reason: str | None = None
    sla: SlaRead


class MessageRead(SQLModel):
    id: int
    direction: str
    source: str
    author_id: str
    author_name: str
    text: str
    attachments: list[dict[str, Any]]
    sent_at: datetime | None
    received_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    external_id: str | None
    previous_texts: list[dict[str, Any]] = Field(default_factory=list)
    interim: bool = False
    permalink: str | None = None


class TimelineRead(SQLModel):
    id: int
    at: datetime
    kind: str
    actor_id: int | None
    data: dict[str, Any]


class QuestionDetail(QuestionRead):
    messages: list[MessageRead]
    timeline: list[TimelineRead]
    context: str | None = None


# Ingestion reads these through process-wide snapshots (app.core.snapshots).
snapshots.watch(WebhookSubscription)
