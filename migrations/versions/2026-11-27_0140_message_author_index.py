"""An index for spam detection's look at a citizen's recent messages on a page

Without it every new question scanned its page's whole message history: with
18,000 questions on one page, processing fell to 240 events/s.

Revision ID: 7c1e4a9d2b10
Revises: 50dc0f594cd8
Create Date: 2026-11-27 01:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c1e4a9d2b10"
down_revision: str | None = "50dc0f594cd8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_message_page_author_sent", "message", ["page_id", "author_id", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_page_author_sent", table_name="message")
