"""Report facts know when a question warns, and the daily rollup carries the fold's stamp

- `report_fact.warn_at`: the earliest warning time of the question's running clocks, so
  that the backlog counts the ones warning now from the facts' own index instead of
  probing every open question's clocks (111 ms of a region's dashboard at a million
  questions). The clock trigger now also watches `warn_at` and `due_at`.
- `report_day.stamp`: a random number of the fold that wrote the row. A scope and
  period's (row count, sum of stamps) changes whenever any of its questions' facts
  changed, so figures that cannot be summed from the rollup (the percentiles) are kept
  per process under that mark.

Revision ID: 8d2f6b1a7c35
Revises: 4c7e1a9d2b63
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2f6b1a7c35"
down_revision: str | None = "4c7e1a9d2b63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MARK = (
    "INSERT INTO report_dirty (question_id, marks) VALUES ({id}, 1) "
    "ON CONFLICT (question_id) DO UPDATE SET marks = report_dirty.marks + 1;"
)
_OLD_CLOCK = ("question_id", "target", "state", "breached_at", "working_minutes", "wall_minutes")
_NEW_CLOCK = (*_OLD_CLOCK, "warn_at", "due_at")
_OPEN_OLD = ["open", "institution_id", "created_at", "due_at"]
_OPEN_NEW = ["open", "institution_id", "created_at", "due_at", "warn_at", "classification"]


def _clock_trigger(columns: Sequence[str]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        f"DROP TRIGGER IF EXISTS report_mark_sla_clock_update{' ON sla_clock' if postgres else ''}"
    )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    if postgres:
        op.execute(
            "CREATE TRIGGER report_mark_sla_clock_update AFTER UPDATE ON sla_clock "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION report_mark_sla_clock()"
        )
        return
    marks = " ".join(_MARK.format(id=f"{r}.question_id") for r in ("OLD", "NEW"))
    op.execute(
        "CREATE TRIGGER report_mark_sla_clock_update AFTER UPDATE ON sla_clock FOR EACH ROW "
        f"WHEN {changed.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN {marks} END"
    )


def upgrade() -> None:
    with op.batch_alter_table("report_fact") as batch:
        batch.add_column(sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_report_fact_open", table_name="report_fact")
    op.create_index("ix_report_fact_open", "report_fact", _OPEN_NEW)
    # The open questions' warning times as the fold computes them (the others have none).
    op.execute(
        "UPDATE report_fact SET warn_at = (SELECT min(c.warn_at) FROM sla_clock c "
        "WHERE c.question_id = report_fact.question_id AND c.state IN ('running', 'warning')) "
        "WHERE report_fact.open"
    )
    with op.batch_alter_table("report_day") as batch:
        batch.add_column(sa.Column("stamp", sa.Integer(), nullable=False, server_default="0"))
    _clock_trigger(_NEW_CLOCK)


def downgrade() -> None:
    _clock_trigger(_OLD_CLOCK)
    with op.batch_alter_table("report_day") as batch:
        batch.drop_column("stamp")
    op.drop_index("ix_report_fact_open", table_name="report_fact")
    with op.batch_alter_table("report_fact") as batch:
        batch.drop_column("warn_at")
    op.create_index("ix_report_fact_open", "report_fact", _OPEN_OLD)
