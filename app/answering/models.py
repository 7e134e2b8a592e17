"""Request and response shapes of the operator's actions in the JSON API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.core.db import UTCDateTime, utcnow
from app.core.json_api import RowId, examples

REPLY_MAX_LENGTH = 9000


class ReplyCreate(BaseModel):
    model_config = examples(
        {
            "text": "Ирина, здравствуйте! Ремонт ул. Садовой включён в план на май.",
            "interim": False,
        },
        {
            "text": "Здравствуйте! Запрос передан в управление ЖКХ, ответим до 20 марта.",
            "interim": True,
            "expected_at": "2026-03-20T18:00:00+05:00",
        },
    )
    text: str = Field(
        min_length=1,
        max_length=REPLY_MAX_LENGTH,
        description="Текст ответа; публикуется на платформе от имени страницы",
    )
    interim: bool = Field(
        default=False,
        description="Промежуточный ответ («разбираемся, ответим до …»): нужен `expected_at`",
    )
    expected_at: AwareDatetime | None = Field(
        default=None, description="Когда будет окончательный ответ (для промежуточного)"
    )


class OutboxItemRead(BaseModel):
    """A reply (or outgoing webhook) waiting to be published, or its outcome."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 41,
                    "kind": "reply",
                    "question_id": 17,
                    "message_id": 230,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": "2026-03-10T07:00:00Z",
                    "error_code": None,
                    "error_message": None,
                    "external_id": None,
                    "created_at": "2026-03-10T07:00:00Z",
                    "sent_at": None,
                }
            ]
        },
    )
    id: int
    kind: str
    question_id: int | None
    message_id: int | None
    status: str = Field(description="pending, sending, sent, failed, cancelled")
    attempts: int
    next_attempt_at: datetime | None
    error_code: str | None = Field(description="Причина неудачи (машинный код)")
    error_message: str | None = Field(description="Что случилось и что делать, по-русски")
    external_id: str | None = Field(description="Идентификатор опубликованного ответа")
    created_at: datetime
    sent_at: datetime | None = Field(description="Когда платформа приняла ответ")


class ReplyCheck(BaseModel):
    """Whether a reply through Otklik is possible: shown before the operator types."""

    model_config = examples(
        {"can_reply": True, "problem": None, "reply_to_message_id": 229},
        {
            "can_reply": False,
            "problem": "Ответы на комментарии в обсуждениях … принимает только с ключом "
            "администратора сообщества.",
            "reply_to_message_id": 229,
        },
    )
    can_reply: bool
    problem: str | None = None
    reply_to_message_id: int | None = None


class NoteCreate(BaseModel):
    model_config = examples({"text": "Позвонила в МКУ «Дорстрой», ждём ответа до пятницы."})
    text: str = Field(
        min_length=1, max_length=REPLY_MAX_LENGTH, description="Видна только сотрудникам"
    )


class AssignBody(BaseModel):
    model_config = examples({"user_id": 7}, {"user_id": None})
    user_id: RowId | None = Field(description="Исполнитель; null снимает назначение")


class StatusChange(StrEnum):
    waiting_citizen = "waiting_citizen"
    in_progress = "in_progress"
    closed = "closed"
    reopen = "reopen"


class StatusBody(BaseModel):
    model_config = examples(
        {"status": "waiting_citizen"}, {"status": "closed"}, {"status": "reopen"}
    )
    status: StatusChange = Field(
        description="waiting_citizen (ждём гражданина: сроки на паузе), in_progress, "
        "closed, reopen (вернуть в работу закрытый или отвеченный вопрос)"
    )


# --- canned responses -------------------------------------------------------------------------


class CannedResponseCreate(BaseModel):
    model_config = examples(
        {
            "institution_id": 3,
            "title": "Промежуточный ответ",
            "text": "{{citizen_name}}, здравствуйте! {{institution}} разбирается в вопросе, "
            "ответим до {{expected_date}}.",
        }
    )
    institution_id: RowId | None = Field(
        default=None, description="Учреждение; null — шаблон для всех (только администратор)"
    )
    title: str = Field(min_length=1, max_length=255)
    text: str = Field(
        min_length=1,
        max_length=REPLY_MAX_LENGTH,
        description="Переменные: {{citizen_name}}, {{expected_date}}, {{institution}}",
    )


class CannedResponseUpdate(BaseModel):
    model_config = examples({"title": "Ремонт дорог", "text": "{{citizen_name}}, здравствуйте!"})
    title: str | None = Field(default=None, min_length=1, max_length=255)
    text: str | None = Field(default=None, min_length=1, max_length=REPLY_MAX_LENGTH)


class CannedResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    institution_id: int | None
    title: str
    text: str
    created_by: int | None
    created_at: datetime


class CannedRender(BaseModel):
    model_config = examples({"question_id": 17, "expected_at": "2026-03-20T18:00:00+05:00"})
    question_id: RowId
    expected_at: AwareDatetime | None = None


class RenderedText(BaseModel):
    model_config = examples({"text": "Ирина, здравствуйте! Администрация разбирается в вопросе."})
    text: str


# --- API tokens -------------------------------------------------------------------------------


# --- outgoing webhook subscriptions -----------------------------------------------------------


class CannedResponse(SQLModel, table=True):
    __tablename__ = "canned_response"
    id: int | None = ColumnField(default=None, primary_key=True)
    # None: available to every institution.
    institution_id: int | None = ColumnField(default=None, foreign_key="institution.id", index=True)
    title: str = ColumnField(max_length=255)
    text: str = ColumnField(sa_type=sa.Text)
    created_by: int | None = ColumnField(default=None, foreign_key="user.id")
    created_at: datetime = ColumnField(default_factory=utcnow, sa_type=UTCDateTime)
