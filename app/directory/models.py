"""Territories, institutions and pages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import field_validator
from sqlmodel import Field, SQLModel

from app.core import snapshots
from app.core.db import EnumText, UTCDateTime, utcnow


class TerritoryKind(StrEnum):
    federal = "federal"
    region = "region"
    municipality = "municipality"
    settlement = "settlement"


class Sector(StrEnum):
    administration = "administration"
    education = "education"
    health = "health"
    culture = "culture"
    sport = "sport"
    housing = "housing"
    social = "social"
    transport = "transport"
    employment = "employment"
    other = "other"


SECTOR_NAMES_RU: dict[Sector, str] = {
    Sector.administration: "Администрация",
    Sector.education: "Образование",
    Sector.health: "Здравоохранение",
    Sector.culture: "Культура",
    Sector.sport: "Спорт",
    Sector.housing: "ЖКХ",
    Sector.social: "Социальная защита",
    Sector.transport: "Транспорт",
    Sector.employment: "Занятость",
    Sector.other: "Другое",
}


class Platform(StrEnum):
    vk = "vk"
    telegram = "telegram"
    ok = "ok"
    max = "max"
    generic = "generic"


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {value!r}") from exc
    return value


class TerritoryBase(SQLModel):
    name: str = Field(max_length=255, min_length=1)
    kind: TerritoryKind = Field(sa_type=EnumText(TerritoryKind))
    parent_id: int | None = Field(default=None, foreign_key="territory.id", index=True)
    timezone: str = Field(default="Europe/Moscow", max_length=64)


class Territory(TerritoryBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Materialised path of ids ("/1/4/9/"): subtree scoping is one LIKE on an index.
    path: str = Field(default="/", max_length=512, index=True)
    # "Челябинская область / Чебаркульский городской округ": the import's natural key.
    full_name: str = Field(max_length=1024, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TerritoryCreate(TerritoryBase):
    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


class TerritoryUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=255, min_length=1)
    kind: TerritoryKind | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class TerritoryRead(TerritoryBase):
    id: int
    full_name: str
    created_at: datetime


class InstitutionBase(SQLModel):
    name: str = Field(max_length=500, min_length=1)
    territory_id: int = Field(foreign_key="territory.id", index=True)
    sector: Sector = Field(default=Sector.other, sa_type=EnumText(Sector), index=True)
    parent_id: int | None = Field(default=None, foreign_key="institution.id", index=True)


class Institution(InstitutionBase, table=True):
    __table_args__ = (sa.UniqueConstraint("territory_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(default="/", max_length=512, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Days its finished questions keep citizens' personal data (app/questions/retention.py);
    # None: the regional default (OTKLIK_RETENTION_DAYS); 0: never erased.
    retention_days: int | None = Field(default=None)


class InstitutionCreate(InstitutionBase):
    pass


# The longest period an institution may keep personal data, in days (a century);
# 0 keeps it for good.
RETENTION_DAYS_MAX = 36_500


class InstitutionUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=500, min_length=1)
    territory_id: int | None = None
    sector: Sector | None = None
    parent_id: int | None = None
    # null: the regional default (OTKLIK_RETENTION_DAYS); 0: for good.
    retention_days: int | None = Field(default=None, ge=0, le=RETENTION_DAYS_MAX)


class InstitutionRead(InstitutionBase):
    id: int
    created_at: datetime
    retention_days: int | None = None


class PageBase(SQLModel):
    institution_id: int = Field(foreign_key="institution.id", index=True)
    platform: Platform = Field(sa_type=EnumText(Platform))
    name: str = Field(max_length=500, min_length=1)
    url: str = Field(default="", max_length=1000)
    external_id: str = Field(max_length=255, min_length=1)


class Page(PageBase, table=True):
    __table_args__ = (sa.UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    # The webhook URL key: long and random, the only secret OK requests carry.
    key: str = Field(max_length=64, unique=True)
    # Credentials are Fernet tokens (see app.core.crypto), never plain text.
    secret_enc: str | None = Field(default=None, sa_type=sa.Text)
    access_token_enc: str | None = Field(default=None, sa_type=sa.Text)
    user_token_enc: str | None = Field(default=None, sa_type=sa.Text)
    confirmation_code: str | None = Field(default=None, max_length=255)
    staff_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Telegram: the linked discussion group, learnt from automatic forwards.
    discussion_chat_id: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PageCreate(PageBase):
    secret: str | None = None
    confirmation_code: str | None = None
    access_token: str | None = None
    user_token: str | None = None
    staff_ids: list[str] = Field(default_factory=list)

    @field_validator("staff_ids", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

    @field_validator("external_id", mode="before")
    @classmethod
    def _external_id_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class PageUpdate(SQLModel):
    institution_id: int | None = None
    name: str | None = Field(default=None, max_length=500, min_length=1)
    url: str | None = Field(default=None, max_length=1000)
    external_id: str | None = None
    secret: str | None = None
    confirmation_code: str | None = None
    access_token: str | None = None
    user_token: str | None = None
    staff_ids: list[str] | None = None
    is_active: bool | None = None


class PageRead(PageBase):
    id: int
    key: str
    webhook_url: str
    confirmation_code: str | None
    staff_ids: list[str]
    is_active: bool
    has_secret: bool
    has_access_token: bool
    has_user_token: bool
    created_at: datetime


# Ingestion reads these through process-wide snapshots (app.core.snapshots).
snapshots.watch(Page, Institution, Territory)


class ImportStatus(StrEnum):
    previewed = "previewed"
    applying = "applying"
    done = "done"
    cancelled = "cancelled"


class DirectoryImport(SQLModel, table=True):
    """An uploaded registry waiting to be applied: its rows and the preview shown.

    Kept in the database (not in a process's memory), so that any web process can
    apply it, step by step, while the browser polls the progress."""

    __tablename__ = "directory_import"
    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    filename: str = Field(default="", max_length=255)
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: ImportStatus = Field(default=ImportStatus.previewed, sa_type=EnumText(ImportStatus))
    raw: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    preview: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    total_steps: int = 0
    done_steps: int = 0
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
