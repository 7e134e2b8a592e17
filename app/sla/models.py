"""SLA policies, business calendars and the per-question clocks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core import snapshots
from app.core.db import EnumText, UTCDateTime, utcnow


class Target(StrEnum):
    first_response = "first_response"
    next_response = "next_response"
    final_answer = "final_answer"


class ClockState(StrEnum):
    running = "running"
    warning = "warning"
    breached = "breached"
    met = "met"
    missed = "missed"
    paused = "paused"
    none = "none"


class BusinessCalendar(SQLModel, table=True):
    __tablename__ = "business_calendar"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    # None: the time zone of the question's territory.
    timezone: str | None = Field(default=None, max_length=64)
    # {"0": [["09:00", "13:00"], ["14:00", "18:00"]], ...}; weekday 0 is Monday.
    weekly: dict[str, list[list[str]]] = Field(default_factory=dict, sa_type=sa.JSON)
    use_production_calendar: bool = True
    extra_days_off: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # {"2026-12-26": [["10:00", "14:00"]]}: an institution working on a weekend date.
    extra_working_days: dict[str, list[list[str]]] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaPolicyBase(SQLModel):
    name: str = Field(max_length=255)
    territory_id: int | None = Field(default=None, foreign_key="territory.id", index=True)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    sector: str | None = Field(default=None, max_length=20)
    first_response_minutes: int = Field(default=480, gt=0)
    urgent_first_response_minutes: int | None = Field(default=240, gt=0)
    next_response_minutes: int | None = Field(default=480, gt=0)
    final_answer_minutes: int | None = Field(default=7 * 9 * 60, gt=0)  # 7 working days
    working_time: bool = True
    calendar_id: int | None = Field(default=None, foreign_key="business_calendar.id")
    warn_ratio: float = Field(default=0.75, gt=0, lt=1)
    effective_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaPolicy(SlaPolicyBase, table=True):
    """A version of a norm. A question keeps the version it was created under."""

    __tablename__ = "sla_policy"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user.id")


class SlaClock(SQLModel, table=True):
    """One target of one question: its deadline, state and the time it took."""

    __tablename__ = "sla_clock"
    __table_args__ = (
        sa.UniqueConstraint("question_id", "target"),
        # The watcher's work list: running clocks by the next instant to look at.
        sa.Index("ix_sla_clock_state_check", "state", "check_at"),
        # Reports: a question's first-response clock, breaches and response times,
        # read from the index alone.
        sa.Index(
            "ix_sla_clock_question_covering",
            "question_id",
            "target",
            "state",
            "breached_at",
            "working_minutes",
            "wall_minutes",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id")
    target: Target = Field(sa_type=EnumText(Target))
    state: ClockState = Field(default=ClockState.running, sa_type=EnumText(ClockState))
    started_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    warn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the watcher should next look at this clock (warn_at, then due_at).
    check_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    target_minutes: int = 0
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    working_minutes: float | None = None
    wall_minutes: float | None = None
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_seconds: float = 0
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalation_level: int = 0
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


# Ingestion reads these through process-wide snapshots (app.core.snapshots).
snapshots.watch(SlaPolicy, BusinessCalendar)
