"""What the question page shows: the thread with each reply's publication state, the
timeline in words, the SLA clocks, and what the signed-in user may do.

Read only: the page's actions are the service functions of `app.answering.service` and
`app.routing.service`, the same ones the JSON API calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import canned as canned_mod
from app.answering import service
from app.answering.models import CannedResponse, StatusChange
from app.auth import service as auth_service
from app.auth.models import User
from app.core import format as fmt
from app.core.crypto import Cipher
from app.directory import service as directory_service
from app.directory.models import Institution, Page
from app.questions import timeline as timeline_mod
from app.questions.models import (
    STATUS_NAMES_RU,
    Message,
    MessageSource,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Question,
    QuestionStatus,
    ThreadContext,
    TimelineEntry,
)
from app.routing import service as routing_service
from app.routing.models import Category
from app.sla import display
from app.sla.models import SlaClock, SlaPolicy, Target

TARGET_NAMES_RU: dict[str, str] = {
    Target.first_response: "Первый ответ",
    Target.next_response: "Ответ на уточнение",
    Target.final_answer: "Окончательный ответ",
}
STATUS_CHANGE_NAMES_RU: dict[StatusChange, str] = {
    StatusChange.waiting_citizen: "Ждём ответа жителя",
    StatusChange.in_progress: "Вернуть в работу",
    StatusChange.closed: "Закрыть вопрос",
    StatusChange.reopen: "Открыть снова",
}
# The reasons the dismissal form offers (ui.md §4: few choices are radios).
DISMISS_CHOICES: list[tuple[str, str, str]] = [
    ("spam", "Спам", "Реклама, мошенничество, бессмыслица."),
    ("off_topic", "Не вопрос", "Благодарность, реплика, реакция — отвечать не нужно."),
    ("duplicate", "Дубликат", "Житель уже спросил об этом, вопрос в работе."),
    ("other", "Другое", "Опишите причину в комментарии."),
]
_STATUS_RU = {str(k): v for k, v in STATUS_NAMES_RU.items()} | {"dismissed": "Снят"}
_CLASS_RU = {
    "question": "вопрос",
    "complaint": "жалоба",
    "gratitude": "благодарность",
    "spam": "спам",
    "other": "не вопрос",
}


@dataclass(frozen=True, slots=True)
class TimelineLine:
    at: datetime
    kind: str
    title: str
    detail: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ClockLine:
    target: str
    name: str
    urgency: display.Urgency
    started_at: datetime
    done_at: datetime | None
    expected_at: datetime | None


@dataclass
class QuestionPage:
    question: Question
    institution: Institution | None
    page: Page | None
    tz: str
    context: ThreadContext | None
    messages: list[Message]
    notes: list[Message]
    publication: dict[int, OutboxItem]
    timeline: list[TimelineLine]
    clocks: list[ClockLine]
    urgency: display.Urgency
    policy: SlaPolicy | None
    assignee: User | None
    category: str | None
    linked: list[Question]
    can_act: bool
    reply_problem: str | None = None
    reply_limit: int = 0
    reply_splits: bool = False
    canned: Sequence[CannedResponse] = ()
    colleagues: list[User] = field(default_factory=list)
    status_changes: list[tuple[str, str]] = field(default_factory=list)
    seen_response_id: int = 0

    @property
    def publishing(self) -> bool:
        """A reply is waiting for the platform: the page polls until it is settled."""
        waiting = (OutboxStatus.pending, OutboxStatus.sending)
        return any(item.status in waiting for item in self.publication.values())

    @property
    def dismiss_text(self) -> str:
        reason = self.question.dismiss_reason or ""
        return routing_service.DISMISS_REASONS_RU.get(reason, reason)

    @staticmethod
    def history(message: Message) -> list[dict[str, Any]]:
        """A message's earlier texts, newest first, each with `until_at` (when it changed)."""
        out = []
        for old in reversed(message.previous_texts):
            until = old.get("until")
            try:
                until_at = datetime.fromisoformat(until) if isinstance(until, str) else None
            except ValueError:
                until_at = None
            out.append({"text": str(old.get("text", "")), "until": until, "until_at": until_at})
        return out

    @property
    def is_open(self) -> bool:
        return self.question.status in (
            QuestionStatus.new,
            QuestionStatus.in_progress,
            QuestionStatus.waiting_citizen,
        )


def build(
    session: Session, question: Question, user: User, *, now: datetime, cipher: Cipher
) -> QuestionPage:
    """Everything the question page shows, for `user` (already allowed to see it)."""
    assert question.id is not None
    institution = directory_service.get_institution(session, question.institution_id)
    territory = (
        directory_service.get_territory(session, institution.territory_id) if institution else None
    )
    page = directory_service.get_page(session, question.page_id)
    messages = list(
        session.exec(
            select(Message)
            .where(Message.question_id == question.id)
            .order_by(col(Message.received_at), col(Message.id))
        ).all()
    )
    # The thread reads in platform time; an unpublished reply sorts by when it was written.
    thread = sorted(
        (m for m in messages if m.source != MessageSource.note),
        key=lambda m: (m.sent_at or m.received_at, m.id or 0),
    )
    responses = [
        m.id or 0 for m in thread if m.source in (MessageSource.otklik, MessageSource.native)
    ]
    clocks = list(session.exec(select(SlaClock).where(SlaClock.question_id == question.id)))
    result = QuestionPage(
        question=question,
        institution=institution,
        page=page,
        tz=territory.timezone if territory else fmt.DEFAULT_TIMEZONE,
        context=_context(session, question),
        messages=thread,
        notes=[m for m in messages if m.source == MessageSource.note],
        publication=_publication(session, question),
        timeline=timeline(session, question),
        clocks=_clock_lines(session, clocks, now),
        urgency=display.most_urgent(session, clocks, now),
        policy=session.get(SlaPolicy, question.policy_id) if question.policy_id else None,
        assignee=session.get(User, question.assignee_id) if question.assignee_id else None,
        category=_category(session, question),
        linked=_linked(session, question, user),
        can_act=service.can_act(user),
        seen_response_id=max(responses, default=0),
    )
    if result.can_act:
        result.reply_problem, _ = service.reply_problem(session, question, cipher)
        result.reply_limit, result.reply_splits = service.reply_limit(question.platform)
        result.canned = canned_mod.list_canned(
            session, user, institution_id=question.institution_id, limit=100
        )
        result.colleagues = routing_service.operators(session, question.institution_id)
        result.status_changes = [
            (str(c), STATUS_CHANGE_NAMES_RU[c])
            for c in service.status_changes(question)
            if _offered(c, question.status)
        ]
    return result


def _offered(change: StatusChange, status: str) -> bool:
    """One button per way back to work: «Вернуть в работу» after waiting for the citizen
    (a new question goes to work when someone takes it), «Открыть снова» otherwise."""
    if change == StatusChange.in_progress:
        return status == QuestionStatus.waiting_citizen
    if change == StatusChange.reopen:
        return status != QuestionStatus.waiting_citizen
    return True


def _context(session: Session, question: Question) -> ThreadContext | None:
    return session.exec(
        select(ThreadContext).where(
            ThreadContext.page_id == question.page_id,
            ThreadContext.thread_key == question.thread_key,
        )
    ).first()


def _publication(session: Session, question: Question) -> dict[int, OutboxItem]:
    """The newest outbox item of each of the question's replies, by message id."""
    items = session.exec(
        select(OutboxItem)
        .where(OutboxItem.question_id == question.id, OutboxItem.kind == OutboxKind.reply)
        .order_by(col(OutboxItem.id))
    ).all()
    return {item.message_id: item for item in items if item.message_id is not None}


def _category(session: Session, question: Question) -> str | None:
    if question.category_id is None:
        return None
    category = session.get(Category, question.category_id)
    return category.name if category else None


def _linked(session: Session, question: Question, user: User) -> list[Question]:
    """The question this one joined (another citizen in the same comment thread) and the
    ones that joined it, as far as the user may see them."""
    links = [col(Question.linked_question_id) == question.id]
    if question.linked_question_id is not None:
        links.append(col(Question.id) == question.linked_question_id)
    return list(
        session.exec(
            select(Question)
            .where(sa.or_(*links), auth_service.scope_filter(user, Question.institution_id))
            .order_by(col(Question.created_at))
            .limit(20)
        ).all()
    )


def _clock_lines(session: Session, clocks: list[SlaClock], now: datetime) -> list[ClockLine]:
    order = list(TARGET_NAMES_RU)
    lines = []
    for clock in sorted(clocks, key=lambda c: order.index(str(c.target))):
        expected = clock.details.get("expected_at")
        lines.append(
            ClockLine(
                target=str(clock.target),
                name=TARGET_NAMES_RU.get(str(clock.target), str(clock.target)),
                urgency=display.clock_urgency(session, clock, now),
                started_at=clock.started_at,
                done_at=clock.done_at,
                expected_at=datetime.fromisoformat(expected) if expected else None,
            )
        )
    return lines


# --- the timeline in words --------------------------------------------------------------------


def timeline(session: Session, question: Question) -> list[TimelineLine]:
    """The question's timeline, oldest first, each entry with a line of detail in Russian."""
    entries = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.question_id == question.id)
        .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
    ).all()
    user_ids = {e.actor_id for e in entries if e.actor_id}
    users = (
        {
            u.id: u.name or u.login
            for u in session.exec(select(User).where(col(User.id).in_(user_ids)))
        }
        if user_ids
        else {}
    )
    institution_ids: set[int] = set()
    for entry in entries:
        for key in ("from_institution_id", "to_institution_id"):
            if isinstance(entry.data.get(key), int):
                institution_ids.add(entry.data[key])
    names = (
        {
            i.id: i.name
            for i in session.exec(
                select(Institution).where(col(Institution.id).in_(institution_ids))
            )
        }
        if institution_ids
        else {}
    )
    titles = timeline_mod.kinds_ru()
    return [
        TimelineLine(
            at=entry.at,
            kind=entry.kind,
            title=titles.get(entry.kind, entry.kind),
            detail=_detail(entry.kind, entry.data, names),
            actor=users.get(entry.actor_id, "") if entry.actor_id else "",
        )
        for entry in entries
    ]


def _detail(kind: str, data: dict[str, Any], institutions: dict[Any, str]) -> str:
    def institution(key: str) -> str:
        return institutions.get(data.get(key), "—")

    if kind == "created" and data.get("platform"):
        return fmt.platform_name(str(data["platform"]))
    if kind in ("classified", "reclassified"):
        value = _CLASS_RU.get(str(data.get("classification") or data.get("to")), "—")
        rule = data.get("rule")
        if kind == "reclassified":
            return f"{_CLASS_RU.get(str(data.get('from')), '—')} → {value}"
        return f"{value.capitalize()}, правило: {rule}" if rule else value.capitalize()
    if kind == "routed":
        text = f"Правило «{data.get('rule_name', '')}»"
        if data.get("to_institution_id"):
            text += f": в очередь «{institution('to_institution_id')}»"
        return text
    if kind == "transferred":
        text = f"{institution('from_institution_id')} → {institution('to_institution_id')}"
        return f"{text}. Причина: {data.get('reason', '')}"
    if kind == "dismissed":
        reasons = routing_service.DISMISS_REASONS_RU
        text = reasons.get(str(data.get("reason")), str(data.get("reason", "")))
        return f"{text}: {data['note']}" if data.get("note") else text
    if kind == "assigned":
        return f"Исполнитель: {data['name']}" if data.get("to") else "Исполнитель снят"
    if kind == "status":
        return f"{_STATUS_RU.get(str(data.get('from')), '—')} → {_STATUS_RU.get(str(data.get('to')), '—')}"
    if kind == "response":
        where = "на платформе" if data.get("source") == "native" else "через Отклик"
        return ("Промежуточный ответ " if data.get("interim") else "Ответ ") + where
    if kind.startswith("sla."):
        return TARGET_NAMES_RU.get(str(data.get("target")), "")
    if kind == "reply_failed":
        return str(data.get("message", ""))
    return ""
