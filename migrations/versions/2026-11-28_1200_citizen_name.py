"""Citizens' names looked up on VK (users.get), cached per platform id

VK payloads carry only the citizen's id; the citizen_names job asks VK for the
name and keeps it here, so one citizen is asked for once a week at most.

Revision ID: 9a4d6e2c8b15
Revises: 3f8b2c6d1e47
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a4d6e2c8b15"
down_revision: str | None = "3f8b2c6d1e47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizen_name",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("platform_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_name")),
        sa.UniqueConstraint(
            "platform", "platform_id", name=op.f("uq_citizen_name_platform_platform_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("citizen_name")
