"""Mask VK's secret in deliveries stored before intake masked it

VK copies the page's secret into every body; deliveries are kept for good and
shown to administrators (failed events), so the secret is replaced by "***".
Rows are read and written in batches by id, the same on SQLite and PostgreSQL.
Irreversible by nature: the downgrade leaves the masked bodies as they are.

Revision ID: 9c4e1b7a2f60
Revises: cefd45a5dd8b
Create Date: 2026-12-06 15:40:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4e1b7a2f60"
down_revision: str | None = "cefd45a5dd8b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_event = sa.table(
    "inbound_event",
    sa.column("id", sa.Integer),
    sa.column("platform", sa.String),
    sa.column("body", sa.LargeBinary),
)


def _masked(body: bytes) -> bytes | None:
    if b'"secret"' not in body and b"\\u" not in body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("secret") in (None, "***"):
        return None
    data["secret"] = "***"
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def mask_vk_secrets(conn: sa.Connection, batch: int = 500) -> int:
    """Mask every stored VK body's secret; returns how many rows changed."""
    last, changed = 0, 0
    while True:
        rows = conn.execute(
            sa.select(_event.c.id, _event.c.body)
            .where(_event.c.platform == "vk", _event.c.id > last)
            .order_by(_event.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return changed
        updates = [
            {"row_id": row_id, "new_body": masked}
            for row_id, body in rows
            if (masked := _masked(bytes(body))) is not None
        ]
        if updates:
            conn.execute(
                _event.update()
                .where(_event.c.id == sa.bindparam("row_id"))
                .values(body=sa.bindparam("new_body")),
                updates,
            )
            changed += len(updates)
        last = rows[-1][0]


def upgrade() -> None:
    mask_vk_secrets(op.get_bind())


def downgrade() -> None:
    pass
