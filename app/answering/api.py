"""JSON API of the operator's actions: replies, notes, assignment, status, canned
responses; and for administrators, API tokens and outgoing webhook subscriptions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.answering import canned
from app.answering import service as replies
from app.answering.models import (
    AssignBody,
    CannedRender,
    CannedResponseCreate,
    CannedResponseRead,
    CannedResponseUpdate,
    NoteCreate,
    OutboxItemRead,
    RenderedText,
    ReplyCheck,
    ReplyCreate,
    StatusBody,
)
from app.auth.deps import ApiUserDep
from app.core.clock import ClockDep
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.json_api import (
    ERROR_RESPONSES,
    MAX_ID,
    ErrorResponse,
    Listing,
    PathId,
    clamp_limit,
    encode_cursor,
    id_cursor,
)
from app.questions import queries
from app.questions.api import question_detail
from app.questions.models import MessageRead, QuestionDetail

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Действие невозможно в текущем состоянии"}
}


# --- replies ----------------------------------------------------------------------------------


@router.post(
    "/questions/{question_id}/reply",
    response_model=OutboxItemRead,
    status_code=202,
    name="api:question_reply",
    tags=["answering"],
    summary="Ответить гражданину",
    responses=_CONFLICT,
)
def post_reply(
    question_id: PathId,
    data: ReplyCreate,
    request: Request,
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
) -> OutboxItemRead:
    """Queue a reply for publication on the platform, as the page, answering the citizen's
    latest message. The answer is the outbox item (`status: pending`); the background
    worker publishes it and the question then shows the response with the platform's id
    and time. If the page cannot take a reply (no token, a VK comment kind that needs an
    administrator's user token), the answer is 409 `cannot_reply` and nothing is queued."""
    question = queries.get_question(session, user, question_id)
    item = replies.reply(
        session,
        question,
        text=data.text,
        interim=data.interim,
        expected_at=data.expected_at,
        by=user,
        now=clock(),
        cipher=get_cipher(request),
    )
    session.commit()
    return OutboxItemRead.model_validate(item)


@router.get(
    "/questions/{question_id}/reply-check",
    response_model=ReplyCheck,
    name="api:question_reply_check",
    tags=["answering"],
    summary="Можно ли ответить через Отклик",
)
def reply_check(
    question_id: PathId, request: Request, session: SessionDep, user: ApiUserDep
) -> ReplyCheck:
    """Say before the operator types whether the platform will take a reply, and why not."""
    question = queries.get_question(session, user, question_id)
    problem, target = replies.reply_problem(session, question, get_cipher(request))
    return ReplyCheck(
        can_reply=problem is None,
        problem=problem,
        reply_to_message_id=target.id if target else None,
    )


@router.get(
    "/questions/{question_id}/outbox",
    response_model=Listing[OutboxItemRead],
    name="api:question_outbox",
    tags=["answering"],
    summary="Ответы вопроса в очереди отправки",
)
def question_outbox(
    question_id: PathId, session: SessionDep, user: ApiUserDep
) -> Listing[OutboxItemRead]:
    """The question's replies with their publication state and, for failed ones, the
    platform's reason in Russian with what to do."""
    question = queries.get_question(session, user, question_id)
    items = replies.outbox_items(session, question)
    return Listing(items=[OutboxItemRead.model_validate(i) for i in items], next_cursor=None)


@router.post(
    "/questions/{question_id}/outbox/{item_id}/retry",
    response_model=OutboxItemRead,
    status_code=202,
    name="api:question_outbox_retry",
    tags=["answering"],
    summary="Повторить отправку ответа",
    responses=_CONFLICT,
)
def retry_reply(
    question_id: PathId, item_id: PathId, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> OutboxItemRead:
    """Queue a failed reply again, e.g. after the page's token was fixed."""
    question = queries.get_question(session, user, question_id)
    item = replies.retry(session, question, item_id, now=clock())
    session.commit()
    return OutboxItemRead.model_validate(item)


@router.post(
    "/questions/{question_id}/notes",
    response_model=MessageRead,
    status_code=201,
    name="api:question_note",
    tags=["answering"],
    summary="Внутренняя заметка",
)
def post_note(
    question_id: PathId, data: NoteCreate, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> MessageRead:
    """Add a note for colleagues (`source: note`). Never published, never a response."""
    question = queries.get_question(session, user, question_id)
    note = replies.add_note(session, question, text=data.text, by=user, now=clock())
    session.commit()
    return MessageRead.model_validate(note, from_attributes=True)


# --- assignment and status --------------------------------------------------------------------


@router.post(
    "/questions/{question_id}/assign",
    response_model=QuestionDetail,
    name="api:question_assign",
    tags=["answering"],
    summary="Назначить исполнителя",
)
def post_assign(
    question_id: PathId, data: AssignBody, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """Give the question to a colleague who works with its institution (`null`: nobody)."""
    question = queries.get_question(session, user, question_id)
    replies.assign(session, question, user_id=data.user_id, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


@router.post(
    "/questions/{question_id}/claim",
    response_model=QuestionDetail,
    name="api:question_claim",
    tags=["answering"],
    summary="Взять вопрос в работу",
    responses=_CONFLICT,
)
def post_claim(
    question_id: PathId, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """Assign the question to the caller; 409 `already_assigned` if a colleague has it."""
    question = queries.get_question(session, user, question_id)
    replies.claim(session, question, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


@router.post(
    "/questions/{question_id}/release",
    response_model=QuestionDetail,
    name="api:question_release",
    tags=["answering"],
    summary="Вернуть вопрос в очередь",
)
def post_release(
    question_id: PathId, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """Remove the assignee. An operator may release only their own question."""
    question = queries.get_question(session, user, question_id)
    replies.release(session, question, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


@router.post(
    "/questions/{question_id}/status",
    response_model=QuestionDetail,
    name="api:question_status",
    tags=["answering"],
    summary="Сменить статус",
    responses=_CONFLICT,
)
def post_status(
    question_id: PathId, data: StatusBody, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """`waiting_citizen` pauses the SLA clocks, `closed` stops them, `reopen` (or
    `in_progress`) returns the question to work."""
    question = queries.get_question(session, user, question_id)
    replies.set_status(session, question, data.status, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


# --- canned responses -------------------------------------------------------------------------


@router.get(
    "/canned-responses",
    response_model=Listing[CannedResponseRead],
    name="api:canned_list",
    tags=["canned responses"],
    summary="Шаблоны ответов",
)
def list_canned(
    session: SessionDep,
    user: ApiUserDep,
    institution_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[CannedResponseRead]:
    """The caller's institutions' templates and the common ones (`institution_id: null`)."""
    size = clamp_limit(limit)
    rows = canned.list_canned(
        session, user, institution_id=institution_id, after_id=id_cursor(cursor), limit=size + 1
    )
    items = [CannedResponseRead.model_validate(c) for c in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.post(
    "/canned-responses",
    response_model=CannedResponseRead,
    status_code=201,
    name="api:canned_create",
    tags=["canned responses"],
    summary="Создать шаблон ответа",
)
def create_canned(
    data: CannedResponseCreate, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> CannedResponseRead:
    """Variables: `{{citizen_name}}`, `{{expected_date}}`, `{{institution}}`."""
    row = canned.create_canned(session, user, data, now=clock())
    session.commit()
    return CannedResponseRead.model_validate(row)


@router.get(
    "/canned-responses/{canned_id}",
    response_model=CannedResponseRead,
    name="api:canned_get",
    tags=["canned responses"],
    summary="Шаблон ответа",
)
def get_canned(canned_id: PathId, session: SessionDep, user: ApiUserDep) -> CannedResponseRead:
    return CannedResponseRead.model_validate(canned.get_canned(session, user, canned_id))


@router.patch(
    "/canned-responses/{canned_id}",
    response_model=CannedResponseRead,
    name="api:canned_update",
    tags=["canned responses"],
    summary="Изменить шаблон ответа",
)
def update_canned(
    canned_id: PathId, data: CannedResponseUpdate, session: SessionDep, user: ApiUserDep
) -> CannedResponseRead:
    row = canned.update_canned(session, user, canned_id, data)
    session.commit()
    return CannedResponseRead.model_validate(row)


@router.delete(
    "/canned-responses/{canned_id}",
    status_code=204,
    name="api:canned_delete",
    tags=["canned responses"],
    summary="Удалить шаблон ответа",
)
def delete_canned(canned_id: PathId, session: SessionDep, user: ApiUserDep) -> Response:
    canned.delete_canned(session, user, canned_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/canned-responses/{canned_id}/render",
    response_model=RenderedText,
    name="api:canned_render",
    tags=["canned responses"],
    summary="Подставить данные вопроса в шаблон",
)
def render_canned(
    canned_id: PathId, data: CannedRender, session: SessionDep, user: ApiUserDep
) -> RenderedText:
    """The template's text for one question: the citizen's name, the institution and the
    expected date (`expected_at`, else the question's interim date) filled in."""
    row = canned.get_canned(session, user, canned_id)
    question = queries.get_question(session, user, data.question_id)
    return RenderedText(text=canned.render(session, row, question, data.expected_at))


# Tokens and webhook subscriptions live in their own module, served with these routes.
