"""A partial index for the processor's claim of the oldest pending deliveries

Without it every batch sorted all pending deliveries by id: with a backlog of
40,000 on PostgreSQL a claim took 34 ms (an external merge sort of the bodies).

Revision ID: 3f8b2c6d1e47
Revises: 7c1e4a9d2b10
Create Date: 2026-11-27 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f8b2c6d1e47"
down_revision: str | None = "7c1e4a9d2b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ix_inbound_event_pending",
        "inbound_event",
        ["id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_event_pending", table_name="inbound_event")
