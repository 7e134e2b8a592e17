"""Partial indexes of the questions and messages that still show a VK citizen's id

The citizen-names job looked for them by reading every message and question, each
run: at 20,000 questions of a busy hour that was half of PostgreSQL's work. These
indexes hold only the rows still waiting for a name (few, once names resolve).

Revision ID: 2f9c4e7a1b58
Revises: 8d2f6b1a7c35
Create Date: 2026-12-07 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2f9c4e7a1b58"
down_revision: str | None = "8d2f6b1a7c35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUESTION = sa.text("citizen_name = '' AND platform = 'vk'")
_MESSAGE = sa.text("author_name = '' AND direction = 'in'")


def upgrade() -> None:
    op.create_index(
        "ix_question_unnamed",
        "question",
        ["citizen_platform_id"],
        postgresql_where=_QUESTION,
        sqlite_where=_QUESTION,
    )
    op.create_index(
        "ix_message_unnamed",
        "message",
        ["author_id"],
        postgresql_where=_MESSAGE,
        sqlite_where=_MESSAGE,
    )


def downgrade() -> None:
    op.drop_index("ix_message_unnamed", table_name="message")
    op.drop_index("ix_question_unnamed", table_name="question")
