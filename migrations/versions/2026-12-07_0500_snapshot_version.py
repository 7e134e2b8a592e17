"""Snapshot version: every process learns of configuration changes from one number

Processes keep snapshots of the configuration (pages, institutions, territories,
people, routing rules, SLA policies and calendars, subscriptions; `app.core.snapshots`)
and rebuilt every one of them every 2 s, in case another process had changed it. Now
triggers on those tables count the transactions that write them in `snapshot_version`,
and a process reads that one number every 2 s instead, rebuilding only when it moved.

PostgreSQL: deferred constraint triggers, so the counter's row is locked at commit
only and once per transaction (a transaction-local setting remembers the bump), and
the new number is visible exactly when the change is. SQLite (one writer at a time):
a row trigger per table and event.

Revision ID: 3c8d5e1f7a92
Revises: 9e4a7c2d5b18
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c8d5e1f7a92"
down_revision: str | None = "9e4a7c2d5b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables `snapshots.watch()` names (tests/core/test_snapshot_version.py checks).
TABLES = (
    "page",
    "institution",
    "territory",
    "user",
    "user_institution",
    "routing_rule",
    "sla_policy",
    "business_calendar",
    "webhook_subscription",
)
_EVENTS = ("insert", "update", "delete")
_BUMP = "UPDATE snapshot_version SET version = version + 1 WHERE id = 1"
# A person's sign-in writes `last_login_at` (and a rehashed password): no snapshot reads
# them, and every sign-in would otherwise send every process to rebuild its snapshots.
# A column of "user" that snapshots come to read must be added here.
_USER_COLUMNS = (
    "login, name, role, territory_id, institution_id, sector, email, telegram_chat_id, "
    "timezone, is_active"
)


def _update(table: str) -> str:
    return f"UPDATE OF {_USER_COLUMNS}" if table == "user" else "UPDATE"


def upgrade() -> None:
    op.create_table(
        "snapshot_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_version")),
    )
    op.execute("INSERT INTO snapshot_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION snapshot_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('otklik.snapshot_bumped', true) IS DISTINCT FROM 'yes' THEN
                    PERFORM set_config('otklik.snapshot_bumped', 'yes', true);
                    {_BUMP};
                END IF;
                RETURN NULL;
            END $$"""
        )
        for table in TABLES:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER snapshot_version_{table} AFTER INSERT OR "
                f'{_update(table)} OR DELETE ON "{table}" DEFERRABLE INITIALLY DEFERRED '
                "FOR EACH ROW EXECUTE FUNCTION snapshot_version_bump()"
            )
        return
    for table in TABLES:
        for event in _EVENTS:
            when = _update(table) if event == "update" else event.upper()
            op.execute(
                f"CREATE TRIGGER snapshot_version_{table}_{event} AFTER {when} "
                f'ON "{table}" BEGIN {_BUMP}; END'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'DROP TRIGGER snapshot_version_{table} ON "{table}"')
        op.execute("DROP FUNCTION snapshot_version_bump()")
    else:
        for table in TABLES:
            for event in _EVENTS:
                op.execute(f"DROP TRIGGER snapshot_version_{table}_{event}")
    op.drop_table("snapshot_version")
