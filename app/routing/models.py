"""Routing rules and categories."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core import snapshots
from app.core.db import UTCDateTime, utcnow


class Category(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    sector: str | None = Field(default=None, max_length=20)


class RoutingRule(SQLModel, table=True):
    """Ordered (by position), first match wins.

    conditions: {"platforms": [...], "page_ids": [...], "institution_ids": [...],
    "territory_id": id (subtree), "sectors": [...], "classifications": [...],
    "keywords": [...lemmas...], "keywords_mode": "any"|"all", "regex": "..."}
    actions: {"route_to_institution_id": id, "category_id": id, "priority": "urgent",
    "dismiss_reason": "..."}
    """

    __tablename__ = "routing_rule"
    id: int | None = Field(default=None, primary_key=True)
    position: int = Field(default=0, index=True)
    name: str = Field(max_length=255)
    enabled: bool = True
    conditions: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    actions: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Ingestion reads these through process-wide snapshots (app.core.snapshots).
snapshots.watch(RoutingRule)
