"""Report facts: one narrow row per question and per transfer, their daily rollup, and
triggers that mark a question for refolding whenever what its figures depend on changes

The dashboard at a region's year (a million questions) walked every question of the
period with 3-5 index probes each, 28 times per dashboard (docs/notes/reports-bench.md).
`app.reports.facts` keeps what each question counts as in `report_fact` and
`report_transfer`, summed per (institution, local day, page, classification, dismissal
reason) in `report_day`. The triggers below put a question into `report_dirty` in the
same transaction as any change to its status, classification, institution, page,
first response, dismissal reason, clocks, Otklik replies or transfers; reports fold the
dirty questions in before they read (exact figures, no lag), whichever code wrote.

Existing questions are all marked dirty here: the first fold of a large backlog
rebuilds every row in one pass (`app.reports.facts.REBUILD_FROM`); `otklik demo`
rebuilds after generating.

Revision ID: 4c7e1a9d2b63
Revises: 7b3e5d1c9a42
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c7e1a9d2b63"
down_revision: str | None = "7b3e5d1c9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the question id column, WHEN on the new row, WHEN on an update, WHEN on the old row)
_QUESTION_CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}"
    for c in (
        "status",
        "institution_id",
        "page_id",
        "classification",
        "first_response_at",
        "dismiss_reason",
        "created_at",
        "due_at",
    )
)
_CLOCK_CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}"
    for c in ("question_id", "target", "state", "breached_at", "working_minutes", "wall_minutes")
)
_OTKLIK = "{r}.direction = 'out' AND {r}.source = 'otklik'"
_MESSAGE_CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ("question_id", "direction", "source")
)
_TRANSFER = "{r}.kind = 'transferred'"
TRIGGERS: list[tuple[str, str, str | None, str | None, str | None]] = [
    ("question", "id", None, _QUESTION_CHANGED, None),
    ("sla_clock", "question_id", None, _CLOCK_CHANGED, None),
    (
        "message",
        "question_id",
        _OTKLIK.format(r="NEW"),
        f"({_MESSAGE_CHANGED}) AND ({_OTKLIK.format(r='OLD')} OR {_OTKLIK.format(r='NEW')})",
        _OTKLIK.format(r="OLD"),
    ),
    (
        "timeline_entry",
        "question_id",
        _TRANSFER.format(r="NEW"),
        f"{_TRANSFER.format(r='OLD')} OR {_TRANSFER.format(r='NEW')}",
        _TRANSFER.format(r="OLD"),
    ),
]
_MARK = (
    "INSERT INTO report_dirty (question_id, marks) VALUES ({id}, 1) "
    "ON CONFLICT (question_id) DO UPDATE SET marks = report_dirty.marks + 1;"
)


def _create_tables() -> None:
    op.create_table(
        "report_fact",
        sa.Column("question_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("classification", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), nullable=False),
        sa.Column("dismiss_reason", sa.String(length=40), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("answered_otklik", sa.Boolean(), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=False),
        sa.Column("judged", sa.Boolean(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_working", sa.Float(), nullable=True),
        sa.Column("first_wall", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("question_id", name=op.f("pk_report_fact")),
    )
    op.create_index(
        "ix_report_fact_institution_created",
        "report_fact",
        ["institution_id", "created_at", "first_working", "first_wall"],
    )
    op.create_index(
        "ix_report_fact_created",
        "report_fact",
        ["created_at", "institution_id", "first_working", "first_wall", "day"],
    )
    op.create_index(
        "ix_report_fact_open", "report_fact", ["open", "institution_id", "created_at", "due_at"]
    )
    op.create_index("ix_report_fact_institution_day", "report_fact", ["institution_id", "day"])
    op.create_table(
        "report_transfer",
        sa.Column("entry_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("classification", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("held_wall_minutes", sa.Float(), nullable=False),
        sa.Column("held_working_minutes", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_report_transfer")),
    )
    op.create_index("ix_report_transfer_question", "report_transfer", ["question_id"])
    op.create_index(
        "ix_report_transfer_holder_created", "report_transfer", ["holder_id", "created_at"]
    )
    op.create_index("ix_report_transfer_holder_day", "report_transfer", ["holder_id", "day"])
    op.create_table(
        "report_day",
        sa.Column("institution_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("page_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("classification", sa.String(length=20), nullable=False),
        sa.Column("dismiss_reason", sa.String(length=40), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("answered_otklik", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("dismissed", sa.Integer(), nullable=False),
        sa.Column("breached", sa.Integer(), nullable=False),
        sa.Column("transferred_out", sa.Integer(), nullable=False),
        sa.Column("held_wall_minutes", sa.Float(), nullable=False),
        sa.Column("held_working_minutes", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "institution_id",
            "day",
            "page_id",
            "classification",
            "dismiss_reason",
            name=op.f("pk_report_day"),
        ),
    )
    op.create_table(
        "report_dirty",
        sa.Column("question_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("question_id", name=op.f("pk_report_dirty")),
    )


def _postgres_triggers() -> None:
    for table, key, _, _, _ in TRIGGERS:
        mark = f"""
            CREATE FUNCTION report_mark_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN
                    {_MARK.format(id=f"OLD.{key}")}
                END IF;
                IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR OLD.{key} <> NEW.{key}) THEN
                    {_MARK.format(id=f"NEW.{key}")}
                END IF;
                RETURN NULL;
            END $$"""
        op.execute(mark)
    for table, _, on_insert, on_update, on_delete in TRIGGERS:
        for event, when in (("INSERT", on_insert), ("UPDATE", on_update), ("DELETE", on_delete)):
            condition = f"WHEN ({when})" if when else ""
            op.execute(
                f"CREATE TRIGGER report_mark_{table}_{event.lower()} AFTER {event} ON {table} "
                f"FOR EACH ROW {condition} EXECUTE FUNCTION report_mark_{table}()"
            )


def _sqlite_triggers() -> None:
    for table, key, on_insert, on_update, on_delete in TRIGGERS:
        for event, when, rows in (
            ("INSERT", on_insert, ("NEW",)),
            ("UPDATE", on_update, ("OLD", "NEW")),
            ("DELETE", on_delete, ("OLD",)),
        ):
            condition = f"WHEN {when.replace('IS DISTINCT FROM', 'IS NOT')}" if when else ""
            marks = " ".join(_MARK.format(id=f"{r}.{key}") for r in rows)
            op.execute(
                f"CREATE TRIGGER report_mark_{table}_{event.lower()} AFTER {event} ON {table} "
                f"FOR EACH ROW {condition} BEGIN {marks} END"
            )


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()
    op.execute("INSERT INTO report_dirty (question_id, marks) SELECT id, 1 FROM question")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, *_ in TRIGGERS:
        for event in ("insert", "update", "delete"):
            on = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS report_mark_{table}_{event}{on}")
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS report_mark_{table}()")
    for table in ("report_dirty", "report_day", "report_transfer", "report_fact"):
        op.drop_table(table)
