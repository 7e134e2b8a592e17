"""The outbox's own rows (send rates) and the shapes of outgoing-webhook subscriptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as ShapeField
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.json_api import examples
from app.questions.outgoing import EVENTS


class SendRate(SQLModel, table=True):
    """The next moment a send may use one rate-limited key (a page token, a chat).

    Shared by every worker process: a sender locks the row (SELECT ... FOR UPDATE on
    PostgreSQL), takes the slot and moves it on, so platform limits hold across processes.
    """

    __tablename__ = "send_rate"
    key: str = Field(primary_key=True, max_length=255)
    next_at: datetime = Field(sa_type=UTCDateTime)


EVENTS_DESCRIPTION = "События: " + ", ".join(EVENTS)


class SubscriptionCreate(BaseModel):
    model_config = examples(
        {
            "url": "https://sed.example.ru/otklik/events",
            "events": ["question.created", "question.answered", "sla.breached"],
        }
    )
    url: str = ShapeField(
        min_length=8, max_length=1000, pattern=r"^https?://\S+$", description="Куда слать POST"
    )
    events: list[str] = ShapeField(min_length=1, description=EVENTS_DESCRIPTION)
    secret: str | None = ShapeField(
        default=None,
        min_length=16,
        max_length=256,
        description="Ключ подписи HMAC; если не задан, создаётся и показывается один раз",
    )


class SubscriptionUpdate(BaseModel):
    model_config = examples({"is_active": False}, {"events": ["sla.breached"]})
    url: str | None = ShapeField(
        default=None, min_length=8, max_length=1000, pattern=r"^https?://\S+$"
    )
    events: list[str] | None = ShapeField(
        default=None, min_length=1, description=EVENTS_DESCRIPTION
    )
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

    secret: str = ShapeField(
        description="X-Otklik-Signature: sha256=<hex HMAC-SHA256 тела с этим ключом>"
    )
