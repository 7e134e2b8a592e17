"""The operator's actions on a question: replies (queued for the outbox), notes,
assignment and status changes. Services flush, never commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.answering.models import REPLY_MAX_LENGTH, StatusChange
from app.auth import service as auth_service
from app.auth.models import Role, User
from app.core.crypto import Cipher
from app.core.errors import Conflict, Invalid, NotAllowed, NotFound
from app.directory import service as directory_service
from app.questions import timeline
from app.questions.locking import lock
from app.questions.models import (
    OPEN_STATUSES,
    Direction,
    Message,
    MessageSource,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Question,
    QuestionStatus,
)
from app.sla import service as sla_service
from webhooks import get_adapter, telegram_api, vk_api
from webhooks import max as max_adapter


class CannotReply(Conflict):
    """The platform cannot take a reply for this question (no token, unsupported object)."""

    code = "cannot_reply"


class AnsweredMeanwhile(Conflict):
    """A colleague (or the page on the platform) answered after the operator opened the
    question; the operator decides whether to send theirs too."""

    code = "answered_meanwhile"

    def __init__(self, message: str, response: Message) -> None:
        super().__init__(message)
        self.response = response


def can_act(user: User) -> bool:
    """Operators and administrators act on questions; a supervisor only watches (pages
    show them questions read-only)."""
    return user.role in (Role.operator, Role.admin)


# One message's length on each platform, and whether a longer reply is sent in parts.
_PLATFORM_LIMITS: Mapping[str, tuple[int, bool]] = {
    "telegram": (telegram_api.TEXT_LIMIT, True),
    "max": (max_adapter.TEXT_LIMIT, True),
    "vk": (vk_api.MESSAGE_LIMIT, False),
}


def reply_limit(platform: str) -> tuple[int, bool]:
    """The length of one message on the platform, and whether Otklik splits a longer reply
    into several messages (otherwise the reply may not be longer)."""
    limit, splits = _PLATFORM_LIMITS.get(platform, (REPLY_MAX_LENGTH, False))
    return min(limit, REPLY_MAX_LENGTH), splits


def last_response(session: Session, question: Question) -> Message | None:
    """The latest public response of the page (through Otklik, queued or published, or
    native on the platform)."""
    return session.exec(
        select(Message)
        .where(
            Message.question_id == question.id,
            Message.direction == Direction.outbound,
            col(Message.source).in_([MessageSource.otklik, MessageSource.native]),
        )
        .order_by(col(Message.id).desc())
    ).first()


# --- replies ----------------------------------------------------------------------------------


def reply_target(session: Session, question: Question) -> Message | None:
    """The citizen's message a reply answers: the latest one that can still be answered."""
    return session.exec(
        select(Message)
        .where(
            Message.question_id == question.id,
            Message.direction == Direction.inbound,
            col(Message.deleted_at).is_(None),
        )
        .order_by(col(Message.sent_at).desc(), col(Message.id).desc())
    ).first()


def reply_problem(
    session: Session, question: Question, cipher: Cipher
) -> tuple[str | None, Message | None]:
    """Why a reply through Otklik is impossible (a Russian sentence), or None; and the
    message it would answer. Shown to the operator before they type."""
    if question.status == QuestionStatus.withdrawn:
        return "Гражданин удалил своё сообщение: ответить на него нельзя.", None
    target = reply_target(session, question)
    if target is None or not target.reply_ref:
        return (
            "В вопросе нет сообщения гражданина, на которое можно ответить через Отклик. "
            "Ответьте на платформе.",
            target,
        )
    page = directory_service.get_page(session, question.page_id)
    if page is None or not page.is_active:
        return "Страница отключена в Откликe: ответ опубликовать нельзя.", target
    try:
        adapter = get_adapter(str(page.platform))
    except KeyError:
        return "Ответы на этой платформе не поддерживаются.", target
    secrets = directory_service.page_secrets(page, cipher)
    problem = adapter.can_reply(secrets, target.reply_ref)
    if problem is None and not (secrets.access_token or secrets.user_token):
        problem = "Для страницы не задан ключ доступа. Добавьте его в карточку страницы."
    return problem, target


def reply(
    session: Session,
    question: Question,
    *,
    text: str,
    interim: bool,
    expected_at: datetime | None,
    by: User,
    now: datetime,
    cipher: Cipher,
    seen_response_id: int | None = None,
) -> OutboxItem:
    """Queue a reply: the outbound message (unpublished: sent_at null) and its outbox item,
    in the caller's transaction. Raises CannotReply (409) before anything is written when
    the platform cannot take it, Invalid (422) for bad input. With `seen_response_id`
    (the latest response the operator saw, 0 for none), a newer response raises
    AnsweredMeanwhile (409) naming who answered, and nothing is queued."""
    text = text.strip()
    if not text:
        raise Invalid("Напишите текст ответа", code="empty_reply")
    limit, splits = reply_limit(question.platform)
    if len(text) > (REPLY_MAX_LENGTH if splits else limit):
        too_long = REPLY_MAX_LENGTH if splits else limit
        raise Invalid(f"Ответ длиннее {too_long} знаков — сократите его", code="reply_too_long")
    lock(session, question)
    if seen_response_id is not None:
        latest = last_response(session, question)
        if latest is not None and (latest.id or 0) > seen_response_id:
            where = " на платформе" if latest.source == MessageSource.native else ""
            who = f": {latest.author_name}" if latest.author_name else ""
            raise AnsweredMeanwhile(f"Пока вы писали, на вопрос ответили{where}{who}.", latest)
    if interim:
        if expected_at is None:
            raise Invalid(
                "Укажите, когда будет окончательный ответ (expected_at)",
                code="expected_at_required",
            )
        if expected_at <= now:
            raise Invalid(
                "Срок окончательного ответа должен быть позже, чем сейчас", code="invalid"
            )
    else:
        expected_at = None
    problem, target = reply_problem(session, question, cipher)
    if problem is not None or target is None:
        raise CannotReply(problem or "Ответить нельзя")
    assert question.id is not None and by.id is not None
    message = Message(
        question_id=question.id,
        page_id=question.page_id,
        direction=Direction.outbound,
        source=MessageSource.otklik,
        author_id=f"user:{by.id}",
        author_name=by.name or by.login,
        user_id=by.id,
        text=text,
        sent_at=None,
        received_at=now,
        reply_to_key=target.external_id,
        interim=interim,
    )
    session.add(message)
    session.flush()
    item = OutboxItem(
        kind=OutboxKind.reply,
        question_id=question.id,
        message_id=message.id,
        page_id=question.page_id,
        payload={
            "text": text,
            "reply_ref": dict(target.reply_ref),
            "thread_key": question.thread_key,
            "interim": interim,
            "expected_at": expected_at.isoformat() if expected_at else None,
            "reply_to_message_id": target.id,
        },
        status=OutboxStatus.pending,
        next_attempt_at=now,
        created_at=now,
        created_by=by.id,
    )
    session.add(item)
    if question.status == QuestionStatus.new:
        question.status = QuestionStatus.in_progress
    question.updated_at = now
    session.add(question)
    session.flush()
    return item


def outbox_items(session: Session, question: Question) -> list[OutboxItem]:
    """The question's replies in the outbox, newest first."""
    return list(
        session.exec(
            select(OutboxItem)
            .where(OutboxItem.question_id == question.id, OutboxItem.kind == OutboxKind.reply)
            .order_by(col(OutboxItem.id).desc())
        ).all()
    )


def retry(session: Session, question: Question, item_id: int, *, now: datetime) -> OutboxItem:
    """Send a failed reply again (e.g. after the page's token was fixed)."""
    item = session.get(OutboxItem, item_id)
    if item is None or item.question_id != question.id or item.kind != OutboxKind.reply:
        raise NotFound("Ответ не найден", code="outbox_item_not_found")
    if item.status != OutboxStatus.failed:
        raise Conflict("Повторить можно только неотправленный ответ", code="not_failed")
    item.status = OutboxStatus.pending
    item.attempts = 0
    item.next_attempt_at = now
    item.error_code = item.error_message = None
    session.add(item)
    session.flush()
    return item


# --- notes ------------------------------------------------------------------------------------


def add_note(
    session: Session, question: Question, *, text: str, by: User, now: datetime
) -> Message:
    """An internal note: visible to staff on the question, never published, never a response."""
    text = text.strip()
    if not text:
        raise Invalid("Напишите текст заметки", code="empty_note")
    assert question.id is not None and by.id is not None
    note = Message(
        question_id=question.id,
        page_id=question.page_id,
        direction=Direction.outbound,
        source=MessageSource.note,
        author_id=f"user:{by.id}",
        author_name=by.name or by.login,
        user_id=by.id,
        text=text,
        sent_at=now,
        received_at=now,
    )
    session.add(note)
    session.flush()
    timeline.record(session, question.id, "note", now, actor_id=by.id, data={"message_id": note.id})
    return note


# --- assignment -------------------------------------------------------------------------------


def _set_assignee(
    session: Session, question: Question, assignee: User | None, *, by: User, now: datetime
) -> Question:
    assert question.id is not None
    old = question.assignee_id
    new = assignee.id if assignee else None
    if old == new:
        return question
    question.assignee_id = new
    question.updated_at = now
    session.add(question)
    data: dict[str, Any] = {"from": old, "to": new}
    if assignee is not None:
        data["name"] = assignee.name or assignee.login
    timeline.record(session, question.id, "assigned", now, actor_id=by.id, data=data)
    session.flush()
    return question


def assign(
    session: Session, question: Question, *, user_id: int | None, by: User, now: datetime
) -> Question:
    """Give the question to a colleague who can see it (None: nobody). Raises Invalid when
    that user does not exist, is inactive or works outside the question's institution."""
    lock(session, question)
    if user_id is None:
        return _set_assignee(session, question, None, by=by, now=now)
    assignee = session.get(User, user_id)
    if (
        assignee is None
        or not assignee.is_active
        or not auth_service.can_see_institution(session, assignee, question.institution_id)
    ):
        raise Invalid(
            "Этого пользователя нельзя назначить: он не работает с учреждением вопроса",
            code="invalid_assignee",
        )
    return _set_assignee(session, question, assignee, by=by, now=now)


def claim(session: Session, question: Question, *, by: User, now: datetime) -> Question:
    """Take the question; Conflict (409) if a colleague already has it."""
    lock(session, question)
    if question.assignee_id not in (None, by.id):
        raise Conflict("Вопрос уже взял в работу другой сотрудник", code="already_assigned")
    if question.status == QuestionStatus.new:
        question.status = QuestionStatus.in_progress
    return _set_assignee(session, question, by, by=by, now=now)


def release(session: Session, question: Question, *, by: User, now: datetime) -> Question:
    """Give the question back to the queue. An operator may release only their own."""
    lock(session, question)
    if question.assignee_id is None:
        return question
    if question.assignee_id != by.id and by.role == "operator":
        raise NotAllowed("Вернуть в очередь можно только свой вопрос", code="not_assignee")
    return _set_assignee(session, question, None, by=by, now=now)


# --- status -----------------------------------------------------------------------------------

_FROM: Mapping[StatusChange, frozenset[QuestionStatus]] = {
    StatusChange.waiting_citizen: frozenset(
        {QuestionStatus.new, QuestionStatus.in_progress, QuestionStatus.answered}
    ),
    StatusChange.in_progress: frozenset(
        {QuestionStatus.new, QuestionStatus.waiting_citizen, QuestionStatus.answered}
    ),
    StatusChange.closed: frozenset({*OPEN_STATUSES, QuestionStatus.answered}),
    StatusChange.reopen: frozenset(
        {
            QuestionStatus.closed,
            QuestionStatus.answered,
            QuestionStatus.waiting_citizen,
            QuestionStatus.dismissed,
        }
    ),
}
_TO: Mapping[StatusChange, QuestionStatus] = {
    StatusChange.waiting_citizen: QuestionStatus.waiting_citizen,
    StatusChange.in_progress: QuestionStatus.in_progress,
    StatusChange.closed: QuestionStatus.closed,
    StatusChange.reopen: QuestionStatus.in_progress,
}


def status_changes(question: Question) -> list[StatusChange]:
    """The status changes possible from the question's status, for the action buttons."""
    return [
        change
        for change in StatusChange
        if question.status in _FROM[change] and question.status != _TO[change]
    ]


def set_status(
    session: Session, question: Question, change: StatusChange, *, by: User, now: datetime
) -> Question:
    """Move the question to another status; the SLA clocks follow (waiting pauses them,
    closing stops them, reopening restarts them). Conflict (409) for an impossible move."""
    assert question.id is not None
    lock(session, question)
    new = _TO[change]
    old = question.status
    if old == new:
        return question
    if old not in _FROM[change]:
        raise Conflict(
            f"Нельзя перевести вопрос из статуса «{old}» в «{new}»", code="invalid_transition"
        )
    question.status = new
    question.closed_at = now if new == QuestionStatus.closed else None
    question.updated_at = now
    session.add(question)
    timeline.record(
        session, question.id, "status", now, actor_id=by.id, data={"from": old, "to": new}
    )
    sla_service.on_status_change(session, question, old=old, new=new, at=now)
    session.flush()
    return question
