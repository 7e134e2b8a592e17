"""Drop two indexes that repeat the start of another

`ix_question_queue` (institution, status, due) is the first three columns of
`ix_question_open_queue`, and `ix_notification_user_id` the first column of the
unique (user_id, dedupe_key). Every new question, every change of a question's
status or deadline, and every alert wrote an entry in each; the planner answers the
same reads from the longer index.

Revision ID: 5a7e2c9d4b13
Revises: 3c8d5e1f7a92
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5a7e2c9d4b13"
down_revision: str | None = "3c8d5e1f7a92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_question_queue", table_name="question")
    op.drop_index("ix_notification_user_id", table_name="notification")


def downgrade() -> None:
    op.create_index("ix_notification_user_id", "notification", ["user_id"])
    op.create_index("ix_question_queue", "question", ["institution_id", "status", "due_at"])
