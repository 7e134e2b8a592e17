"""Indexes for reports and queues at a region's scale (a million questions a year)

Measured with `make bench` (bench/reports.py) on `otklik demo --scale region-year`:

- ix_question_institution_created: the period's questions of the institutions in
  scope, read from the index alone on SQLite (status, classification, first response
  and page are in it); before, SQLite searched the queue index by institution and read
  every question the institution ever had to keep the period's;
- ix_sla_clock_question_covering: a question's first-response clock, whether any clock
  was breached, and the response times for the percentiles, without reading the rows;
- ix_message_question_source: "was it answered through Otklik" per question;
- ix_timeline_entry_kind_question: the transfers of a period (without it, every
  timeline entry was read to find them);
- ix_question_page_created: the newest question of each page (silent pages);
- ix_question_open_queue: an institution's open questions with what the queue sorts,
  counts and shows (tabs, overdue, assignee, newest change) in the index.

Revision ID: 8b3f6d2e9a41
Revises: 3d8f2a61c7b5
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8b3f6d2e9a41"
down_revision: str | None = "3d8f2a61c7b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: list[tuple[str, str, list[str]]] = [
    (
        "ix_question_institution_created",
        "question",
        [
            "institution_id",
            "created_at",
            "status",
            "classification",
            "first_response_at",
            "page_id",
        ],
    ),
    ("ix_question_page_created", "question", ["page_id", "created_at"]),
    (
        "ix_question_open_queue",
        "question",
        [
            "institution_id",
            "status",
            "due_at",
            "classification",
            "assignee_id",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "ix_sla_clock_question_covering",
        "sla_clock",
        ["question_id", "target", "state", "breached_at", "working_minutes", "wall_minutes"],
    ),
    ("ix_message_question_source", "message", ["question_id", "source", "direction"]),
    ("ix_timeline_entry_kind_question", "timeline_entry", ["kind", "question_id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
