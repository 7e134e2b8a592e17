"""Figures for /metrics that hold across processes: each job's latest run, and an
index to count the deliveries processed in the last minute

Revision ID: 5e2a7c913d40
Revises: 1747d3295635
Create Date: 2026-12-01 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2a7c913d40"
down_revision: str | None = "1747d3295635"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_stat",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seconds", sa.Float(), nullable=False),
        sa.Column("last_handled", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_stat")),
    )
    op.create_index("ix_inbound_event_processed_at", "inbound_event", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_event_processed_at", table_name="inbound_event")
    op.drop_table("job_stat")
