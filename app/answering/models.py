"""Request and response shapes of the operator's actions in the JSON API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.questions.outgoing import EVENTS

REPLY_MAX_LENGTH = 9000
# Row ids are INTEGER columns: a larger number can name no row, and SQLite cannot even
# bind one past 2**63, so such ids are refused as invalid input.
MAX_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ReplyCreate(BaseModel):
    model_config = _examples(
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

    model_config = _examples(
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
    model_config = _examples({"text": "Позвонила в МКУ «Дорстрой», ждём ответа до пятницы."})
    text: str = Field(
        min_length=1, max_length=REPLY_MAX_LENGTH, description="Видна только сотрудникам"
    )


class AssignBody(BaseModel):
    model_config = _examples({"user_id": 7}, {"user_id": None})
    user_id: RowId | None = Field(description="Исполнитель; null снимает назначение")


class StatusChange(StrEnum):
    waiting_citizen = "waiting_citizen"
    in_progress = "in_progress"
    closed = "closed"
    reopen = "reopen"


class StatusBody(BaseModel):
    model_config = _examples(
        {"status": "waiting_citizen"}, {"status": "closed"}, {"status": "reopen"}
    )
    status: StatusChange = Field(
        description="waiting_citizen (ждём гражданина: сроки на паузе), in_progress, "
        "closed, reopen (вернуть в работу закрытый или отвеченный вопрос)"
    )


# --- canned responses -------------------------------------------------------------------------


class CannedResponseCreate(BaseModel):
    model_config = _examples(
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
    model_config = _examples({"title": "Ремонт дорог", "text": "{{citizen_name}}, здравствуйте!"})
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
    model_config = _examples({"question_id": 17, "expected_at": "2026-03-20T18:00:00+05:00"})
    question_id: RowId
    expected_at: AwareDatetime | None = None


class RenderedText(BaseModel):
    model_config = _examples({"text": "Ирина, здравствуйте! Администрация разбирается в вопросе."})
    text: str


# --- API tokens -------------------------------------------------------------------------------


class TokenCreate(BaseModel):
    model_config = _examples({"user_id": 2, "name": "интеграция с СЭД"})
    user_id: RowId
    name: str = Field(default="", max_length=255)


class TokenCreated(BaseModel):
    """The plain token appears only in this answer; Otklik keeps its hash."""

    model_config = _examples(
        {
            "id": 5,
            "user_id": 2,
            "name": "интеграция с СЭД",
            "prefix": "otk_Ab3dE6",
            "token": "otk_Ab3dE6...",
            "created_at": "2026-03-10T07:00:00Z",
        }
    )
    id: int
    user_id: int
    name: str
    prefix: str
    token: str
    created_at: datetime


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


# --- outgoing webhook subscriptions -----------------------------------------------------------


EVENTS_DESCRIPTION = "События: " + ", ".join(EVENTS)


class SubscriptionCreate(BaseModel):
    model_config = _examples(
        {
            "url": "https://sed.example.ru/otklik/events",
            "events": ["question.created", "question.answered", "sla.breached"],
        }
    )
    url: str = Field(
        min_length=8, max_length=1000, pattern=r"^https?://\S+$", description="Куда слать POST"
    )
    events: list[str] = Field(min_length=1, description=EVENTS_DESCRIPTION)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Ключ подписи HMAC; если не задан, создаётся и показывается один раз",
    )


class SubscriptionUpdate(BaseModel):
    model_config = _examples({"is_active": False}, {"events": ["sla.breached"]})
    url: str | None = Field(default=None, min_length=8, max_length=1000, pattern=r"^https?://\S+$")
    events: list[str] | None = Field(default=None, min_length=1, description=EVENTS_DESCRIPTION)
    is_active: bool | None = None


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    url: str
    events: list[str]
    is_active: bool
    created_at: datetime


class SubscriptionCreated(SubscriptionRead):
    """The answer to a creation: the signing secret, shown this once."""

    secret: str = Field(
        description="X-Otklik-Signature: sha256=<hex HMAC-SHA256 тела с этим ключом>"
    )
