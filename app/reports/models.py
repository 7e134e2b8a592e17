"""The reports' own tables: one narrow row per question (`report_fact`) and per
transfer (`report_transfer`), their daily rollup (`report_day`), and the questions
changed since they were last folded in (`report_dirty`).

They hold nothing of their own: every row is derived from questions, clocks, messages
and the timeline by :mod:`app.reports.facts`. Database triggers (migration
`2026-12-06_1900_report_facts`) mark a question dirty in the same transaction as any
change to what its figures depend on; a report folds the dirty questions in before it
reads, so the figures are exact, never a cached past.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime


class ReportFact(SQLModel, table=True):
    """What one question counts as in the SLA figures (`app.reports.facts` defines it)."""

    __tablename__ = "report_fact"
    __table_args__ = (
        # A period's questions of the institutions in scope, and the percentiles'
        # response times, read as a range per institution.
        sa.Index(
            "ix_report_fact_institution_created",
            "institution_id",
            "created_at",
            "first_working",
            "first_wall",
        ),
        # A period's questions of a whole region: one range of the index alone.
        sa.Index(
            "ix_report_fact_created",
            "created_at",
            "institution_id",
            "first_working",
            "first_wall",
            "day",
        ),
        # The open ones (the backlog now, a period's by age), a short range of the index
        # alone.
        sa.Index(
            "ix_report_fact_open",
            "open",
            "institution_id",
            "created_at",
            "due_at",
            "warn_at",
            "classification",
        ),
        # Refolding an (institution, local day) of the rollup.
        sa.Index("ix_report_fact_institution_day", "institution_id", "day"),
    )
    question_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    institution_id: int
    page_id: int
    classification: str = Field(max_length=20)
    created_at: datetime = Field(sa_type=UTCDateTime)
    # The local date of created_at in the zone of the institution's territory.
    day: date
    open: bool = False
    dismissed: bool = False
    # A DismissReason code when dismissed (unknown codes as "other"), else "".
    dismiss_reason: str = Field(default="", max_length=40)
    answered: bool = False
    answered_otklik: bool = False
    on_time: bool = False
    judged: bool = False
    breached: bool = False
    # The question's earliest open deadline (the queue's `due_at`).
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # First-response time of an answered (met or missed) first-response clock.
    first_working: float | None = None
    first_wall: float | None = None
    # The earliest warning time of its running (or warning) clocks: an open question
    # not overdue warns now when this has passed.
    warn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportTransfer(SQLModel, table=True):
    """One transfer out of a queue, charged to the institution that held the question."""

    __tablename__ = "report_transfer"
    __table_args__ = (
        sa.Index("ix_report_transfer_question", "question_id"),
        sa.Index("ix_report_transfer_holder_created", "holder_id", "created_at"),
        sa.Index("ix_report_transfer_holder_day", "holder_id", "day"),
    )
    entry_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    question_id: int
    holder_id: int
    # The question's page, classification and creation, as its fact row has them.
    page_id: int
    classification: str = Field(max_length=20)
    created_at: datetime = Field(sa_type=UTCDateTime)
    # The local date of created_at in the zone of the holder's territory.
    day: date
    held_wall_minutes: float = 0.0
    held_working_minutes: float = 0.0


class ReportDay(SQLModel, table=True):
    """The additive counts of the facts and transfers of one local day, institution,
    page, classification and dismissal reason ("" for questions not dismissed)."""

    __tablename__ = "report_day"
    institution_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    day: date = Field(primary_key=True)
    page_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    classification: str = Field(primary_key=True, max_length=20)
    dismiss_reason: str = Field(primary_key=True, max_length=40)
    questions: int = 0
    answered: int = 0
    answered_otklik: int = 0
    on_time: int = 0
    judged: int = 0
    open: int = 0
    dismissed: int = 0
    breached: int = 0
    transferred_out: int = 0
    held_wall_minutes: float = 0.0
    held_working_minutes: float = 0.0
    # The fold that wrote the row (a random number per fold): a scope and period's row
    # count and sum of stamps change whenever any of its questions' facts change.
    stamp: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ReportDirty(SQLModel, table=True):
    """A question whose fact row is to be folded in again (written by triggers)."""

    __tablename__ = "report_dirty"
    question_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # Bumped by every marking, so a marking waits for a fold deleting the row (the
    # row lock of ON CONFLICT DO UPDATE) instead of being lost.
    marks: int = 0
