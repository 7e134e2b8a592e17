"""Report marks once per statement on PostgreSQL, in question order

The triggers that put a question into `report_dirty` ran once per changed row: a
batch of processing writes its messages, timeline entries, clocks and questions in
one statement, and each of its rows ran its own upsert (5-8 per new question, 58,000
at 20,000 deliveries of the realistic mix). Now each statement runs one upsert of the
distinct questions it touched, read from its transition tables, sorted so that two
transactions marking the same questions take their row locks in the same order.

The conditions are those of the row triggers they replace (the clock's update watches
the columns of `2026-12-06_2200_report_stamps`). SQLite has no statement triggers: its
row triggers stay.

Revision ID: 9e4a7c2d5b18
Revises: 6b1d3e9f2a47
Create Date: 2026-12-07 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9e4a7c2d5b18"
down_revision: str | None = "6b1d3e9f2a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _changed(columns: Sequence[str]) -> str:
    return " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)


_OTKLIK = "{r}.direction = 'out' AND {r}.source = 'otklik'"
_TRANSFER = "{r}.kind = 'transferred'"
# (table, the question id column, WHEN on the new row, WHEN on an update, WHEN on the old
# row): as the row triggers had them.
TRIGGERS: list[tuple[str, str, str | None, str | None, str | None]] = [
    (
        "question",
        "id",
        None,
        _changed(
            (
                "status",
                "institution_id",
                "page_id",
                "classification",
                "first_response_at",
                "dismiss_reason",
                "created_at",
                "due_at",
            )
        ),
        None,
    ),
    (
        "sla_clock",
        "question_id",
        None,
        _changed(
            (
                "question_id",
                "target",
                "state",
                "breached_at",
                "working_minutes",
                "wall_minutes",
                "warn_at",
                "due_at",
            )
        ),
        None,
    ),
    (
        "message",
        "question_id",
        _OTKLIK.format(r="NEW"),
        f"({_changed(('question_id', 'direction', 'source'))}) "
        f"AND ({_OTKLIK.format(r='OLD')} OR {_OTKLIK.format(r='NEW')})",
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
_EVENTS = ("insert", "update", "delete")


def _rows(condition: str | None) -> str:
    """A row trigger's condition over the transition tables' aliases `o` and `n`."""
    if not condition:
        return "TRUE"
    return condition.replace("OLD.", "o.").replace("NEW.", "n.")


def _marked(key: str, event: str, condition: str | None) -> str:
    """The question ids a statement's rows mark (an update: the old and the new one)."""
    where = _rows(condition)
    if event == "insert":
        return f"SELECT n.{key} AS k FROM new_rows n WHERE {where}"
    if event == "delete":
        return f"SELECT o.{key} AS k FROM old_rows o WHERE {where}"
    return (
        f"SELECT v.k FROM old_rows o JOIN new_rows n ON n.id = o.id "
        f"CROSS JOIN LATERAL (VALUES (o.{key}), (n.{key})) AS v(k) WHERE {where}"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, key, on_insert, on_update, on_delete in TRIGGERS:
        for event, condition in zip(_EVENTS, (on_insert, on_update, on_delete), strict=True):
            name = f"report_marks_{table}_{event}"
            op.execute(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO report_dirty (question_id, marks)
                    SELECT DISTINCT m.k, 1 FROM ({_marked(key, event, condition)}) AS m
                    WHERE m.k IS NOT NULL ORDER BY m.k
                    ON CONFLICT (question_id) DO UPDATE SET marks = report_dirty.marks + 1;
                    RETURN NULL;
                END $$"""
            )
            op.execute(f"DROP TRIGGER report_mark_{table}_{event} ON {table}")
            tables = {
                "insert": "NEW TABLE AS new_rows",
                "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "delete": "OLD TABLE AS old_rows",
            }[event]
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The row triggers again, on the functions their migrations made (still there).
    for table, _, on_insert, on_update, on_delete in TRIGGERS:
        for event, condition in zip(_EVENTS, (on_insert, on_update, on_delete), strict=True):
            name = f"report_marks_{table}_{event}"
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
            when = f"WHEN ({condition})" if condition else ""
            op.execute(
                f"CREATE TRIGGER report_mark_{table}_{event} AFTER {event.upper()} ON {table} "
                f"FOR EACH ROW {when} EXECUTE FUNCTION report_mark_{table}()"
            )
