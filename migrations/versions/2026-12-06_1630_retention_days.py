"""An institution's own retention period for citizens' personal data

Revision ID: 7b3e5d1c9a42
Revises: 5e1a9c3d7b20
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b3e5d1c9a42"
down_revision: str | None = "5e1a9c3d7b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("institution") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("institution") as batch:
        batch.drop_column("retention_days")
