"""Partial index of the alerts still to send by Telegram or e-mail

The delivery job looked for them with a full read of `notification` every run of
every worker (4 ms at 18,000 alerts, growing with every alert ever raised). The
index holds only the rows still waiting to be sent.

Revision ID: 6b1d3e9f2a47
Revises: 2f9c4e7a1b58
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6b1d3e9f2a47"
down_revision: str | None = "2f9c4e7a1b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDELIVERED = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_notification_undelivered",
        "notification",
        ["deliver_after"],
        postgresql_where=_UNDELIVERED,
        sqlite_where=_UNDELIVERED,
    )


def downgrade() -> None:
    op.drop_index("ix_notification_undelivered", table_name="notification")
