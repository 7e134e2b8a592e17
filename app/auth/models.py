"""Users, roles, scope links, API tokens, web sessions and notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as ShapeField
from sqlmodel import Field, SQLModel

from app.core import snapshots
from app.core.db import EnumText, UTCDateTime, utcnow
from app.core.json_api import RowId, examples


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    operator = "operator"


ROLE_NAMES_RU: dict[Role, str] = {
    Role.admin: "Администратор",
    Role.supervisor: "Куратор",
    Role.operator: "Оператор",
}


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=150, unique=True)
    name: str = Field(default="", max_length=255)
    role: Role = Field(sa_type=EnumText(Role))
    password_hash: str | None = Field(default=None, max_length=255)
    # A supervisor's scope: a territory subtree, or an institution subtree.
    territory_id: int | None = Field(default=None, foreign_key="territory.id", index=True)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    # With a territory: only that sector's institutions of the subtree (a regional
    # ministry's supervisor sees every school of the region, not just its own page).
    sector: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=255)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    # The zone the user reads times in (profile); None: their institutions' territory.
    timezone: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserInstitution(SQLModel, table=True):
    """An operator works the queues of these institutions."""

    __tablename__ = "user_institution"
    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    institution_id: int = Field(
        foreign_key="institution.id", primary_key=True, index=True, ondelete="CASCADE"
    )


# Who the SLA alerts reach is kept in snapshots (`sla.recipients.Recipients`).
snapshots.watch(User, UserInstitution)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    name: str = Field(default="", max_length=255)
    token_hash: str = Field(max_length=64, unique=True)
    # The first characters, shown in lists so that a token can be recognised.
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginSession(SQLModel, table=True):
    """A web sign-in. Kept in the database so that any process can check or end it."""

    __tablename__ = "login_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # Idle expiry: a session unused for `session_idle_minutes` ends (touched at most
    # once a minute). None for sessions opened before the column existed.
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Notification(SQLModel, table=True):
    """An in-app alert for one user (SLA warnings, breaches, escalations, transfers)."""

    id: int | None = Field(default=None, primary_key=True)
    # Found by the unique (user_id, dedupe_key) index: no index of its own.
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    question_id: int | None = Field(default=None, foreign_key="question.id", index=True)
    kind: str = Field(max_length=40)
    text: str = Field(sa_type=sa.Text)
    # One alert per (user, key): the same breach never notifies twice.
    dedupe_key: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Channels other than in-app (telegram, email) are sent by the worker; a
    # non-urgent alert raised at night waits for the morning digest.
    deliver_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("user_id", "dedupe_key"),
        # The alerts still to send by Telegram or e-mail (`sla.notify`): few, among all
        # ever raised; without it every look of the worker read the whole table.
        sa.Index(
            "ix_notification_undelivered",
            "deliver_after",
            postgresql_where=sa.text("delivered_at IS NULL"),
            sqlite_where=sa.text("delivered_at IS NULL"),
        ),
    )


class LoginFailure(SQLModel, table=True):
    """A failed sign-in, kept for the throttle's window.

    In the database, not in memory: every web process counts the same attempts, so
    several workers cannot be played against each other to guess passwords faster.
    """

    __tablename__ = "login_failure"
    id: int | None = Field(default=None, primary_key=True)
    # Lower-cased as typed: the throttle counts guesses at a login whether it exists or not.
    login: str = Field(max_length=150, index=True)
    address: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class TelegramLink(SQLModel, table=True):
    """A one-time code that links a user to the alert bot: t.me/<bot>?start=<code>."""

    __tablename__ = "telegram_link"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True, ondelete="CASCADE")
    code: str = Field(max_length=32, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class AlertBot(SQLModel, table=True):
    """What Otklik knows of the alert bot: its username and the next getUpdates offset.

    Keyed by the bot's id (the token's numeric prefix), so a new bot starts afresh.
    `lease_until` lets one worker at a time poll, whatever the number of workers.
    """

    __tablename__ = "alert_bot"
    bot_id: str = Field(primary_key=True, max_length=32)
    username: str | None = Field(default=None, max_length=64)
    update_offset: int = Field(default=0, sa_type=sa.BigInteger)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=500)


class UserCreate(SQLModel):
    login: str = Field(min_length=2, max_length=150)
    name: str = ""
    role: Role
    # Checked by the password policy (app/auth/passwords.py), with Russian messages.
    password: str | None = Field(default=None, max_length=256)
    territory_id: int | None = None
    institution_id: int | None = None
    institution_ids: list[int] = Field(default_factory=list)
    email: str | None = None
    # A supervisor's sector within their territory (directory `Sector` codes).
    sector: str | None = None


class UserRead(SQLModel):
    id: int
    login: str
    name: str
    role: Role
    territory_id: int | None
    institution_id: int | None
    institution_ids: list[int]
    sector: str | None = None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiTokenRead(SQLModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    model_config = examples({"user_id": 2, "name": "интеграция с СЭД"})
    user_id: RowId
    name: str = ShapeField(default="", max_length=255)


class TokenCreated(BaseModel):
    """The plain token appears only in this answer; Otklik keeps its hash."""

    model_config = examples(
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


class UserInvitation(SQLModel, table=True):
    """A one-time link that lets a new (or reset) user choose their own password."""

    __tablename__ = "user_invitation"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """One change or sign-in, written in the transaction of what it records.

    Append-only: the application has no path that updates or deletes a row. The
    actor's login is copied so that the entry reads the same after a rename.
    """

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_object", "object_type", "object_id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_login: str = Field(default="", max_length=150)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=40)
    object_id: str | None = Field(default=None, max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    address: str | None = Field(default=None, max_length=64)
    summary: str = Field(default="", max_length=500)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_id: int | None
    actor_login: str
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    address: str | None
    summary: str


class UserUpdate(BaseModel):
    """A change by an administrator: only the fields given are changed."""

    model_config = examples({"role": "supervisor", "territory_id": 3}, {"active": False})
    name: str | None = ShapeField(default=None, max_length=255)
    email: str | None = ShapeField(default=None, max_length=255)
    role: Role | None = None
    # An operator's institutions (replaces the list).
    institution_ids: list[RowId] | None = None
    # A supervisor's scope: a territory subtree or an institution subtree.
    territory_id: RowId | None = None
    institution_id: RowId | None = None
    # A supervisor's sector within the territory; null for every sector.
    sector: str | None = None
    active: bool | None = None


class UserCreated(UserRead):
    """The user, and — only in this answer — the password or invitation link to pass on."""

    password: str | None = None
    invitation_url: str | None = None
