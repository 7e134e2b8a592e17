"""A registry import with a preview: check and dry-run a file, keep it, apply it in steps.

The preview runs the one importer (`spreadsheet_import.import_rows`) inside a
savepoint that is rolled back, so it says exactly what applying would do: rows
that add objects, rows that change them (old -> new), unchanged rows, and every
bad row with its number and reason. A previewed file is kept in `directory_import`
until it is applied or cancelled; applying runs in steps of `CHUNK` rows, each its
own transaction, so that a large file shows progress and never holds the write
lock for long. Institution parents are linked in a last step, after every row
exists (a parent may come later in the file than its children). Re-applying a
step is harmless: the import is keyed by natural keys and idempotent.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.errors import Conflict, Invalid, NotFound
from app.directory.models import DirectoryImport, ImportStatus
from app.directory.spreadsheet import BadRow
from app.directory.spreadsheet_import import Change, ImportResult, import_rows

CHUNK = 500
# A previewed file older than this must be uploaded again: the directory may have moved on.
KEEP_FOR = timedelta(days=1)
MAX_ROWS = 100_000
MAX_UPLOAD = 20 * 1024 * 1024  # bytes
OBJECT_TYPES = ("territory", "institution", "page")


@dataclass
class RowPlan:
    number: int
    status: str  # "add" | "change"
    changes: list[Change] = field(default_factory=list)


@dataclass
class Preview:
    rows: int
    plans: list[RowPlan]
    errors: list[BadRow]
    created: dict[str, int]
    updated: dict[str, int]

    @property
    def added(self) -> list[RowPlan]:
        return [p for p in self.plans if p.status == "add"]

    @property
    def changed(self) -> list[RowPlan]:
        return [p for p in self.plans if p.status == "change"]

    @property
    def unchanged(self) -> int:
        return self.rows - len(self.plans)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: stored with the import and answered by the API."""
        return {
            "rows": self.rows,
            "added": len(self.added),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
            "created": self.created,
            "updated": self.updated,
            "plans": [
                {
                    "row": p.number,
                    "status": p.status,
                    "changes": [
                        {
                            "kind": c.kind,
                            "object": c.object_type,
                            "name": c.name,
                            "fields": {k: {"old": o, "new": n} for k, (o, n) in c.fields.items()},
                        }
                        for c in p.changes
                    ],
                }
                for p in self.plans
            ],
            "errors": [{"row": e.number, "reason": e.reason} for e in self.errors],
        }


def preview(session: Session, raw: list[dict[str, str]]) -> Preview:
    """What importing `raw` would do, computed by the importer itself and rolled back."""
    if len(raw) > MAX_ROWS:
        raise Invalid(f"В файле больше {MAX_ROWS:,} строк: разделите его".replace(",", "\u00a0"))
    changes: list[Change] = []
    errors: list[BadRow] = []
    nested = session.begin_nested()
    try:
        result = import_rows(session, raw, on_change=changes.append, errors=errors)
    finally:
        nested.rollback()
    by_row: dict[int, RowPlan] = {}
    for change in changes:
        plan = by_row.setdefault(change.row, RowPlan(change.row, "change"))
        plan.changes.append(change)
        if change.kind == "add":
            plan.status = "add"
    bad_rows = {e.number for e in errors}
    counted = len([r for r in raw if any(r.values())])
    errors.sort(key=lambda e: e.number)
    return Preview(
        rows=counted - len(bad_rows),
        plans=sorted((p for p in by_row.values() if p.number not in bad_rows), key=_number),
        errors=errors,
        created=dict(result.created),
        updated=dict(result.updated),
    )


def _number(plan: RowPlan) -> int:
    return plan.number


def _steps(raw: list[dict[str, str]]) -> int:
    chunks = max(1, -(-len(raw) // CHUNK))
    has_parents = any((r.get("parent_institution") or "").strip() for r in raw)
    return chunks + (1 if has_parents else 0)


def start(
    session: Session, raw: list[dict[str, str]], *, filename: str, by: int | None, now: datetime
) -> tuple[DirectoryImport, Preview]:
    """Preview a file and keep it for applying (even with bad rows: the page lists them)."""
    shown = preview(session, raw)
    row = DirectoryImport(
        token=secrets.token_urlsafe(24),
        filename=filename[:255],
        created_by=by,
        created_at=now,
        raw=raw,
        preview=shown.as_dict(),
        total_steps=_steps(raw),
    )
    session.add(row)
    session.flush()
    return row, shown


def get_import(session: Session, token: str, *, now: datetime) -> DirectoryImport:
    found = session.exec(select(DirectoryImport).where(DirectoryImport.token == token)).first()
    if found is None or (
        found.status == ImportStatus.previewed and found.created_at < now - KEEP_FOR
    ):
        raise NotFound("Такой загрузки нет или она устарела: загрузите файл снова")
    return found


def cancel(session: Session, item: DirectoryImport) -> None:
    if item.status != ImportStatus.previewed:
        raise Conflict("Импорт уже применяется или завершён: отменить его нельзя")
    item.status = ImportStatus.cancelled
    session.add(item)
    session.flush()


def apply_step(session: Session, item: DirectoryImport, *, now: datetime) -> int | None:
    """Apply the next step of a previewed import in the caller's transaction.

    The step is claimed by a conditional update, so two browsers (or two processes)
    never apply the same step twice. Returns the step applied (0 is the first), or
    None when there is nothing left to do.
    Raises Invalid while the preview has bad rows (fix the file and upload it again).
    """
    if item.preview.get("errors"):
        raise Invalid("В файле есть ошибки: исправьте строки и загрузите файл снова")
    if item.status not in (ImportStatus.previewed, ImportStatus.applying):
        return None
    step = item.done_steps
    if step >= item.total_steps:
        return None
    claimed = session.execute(
        sa.update(DirectoryImport)
        .where(
            col(DirectoryImport.id) == item.id,
            col(DirectoryImport.done_steps) == step,
            col(DirectoryImport.status).in_([ImportStatus.previewed, ImportStatus.applying]),
        )
        .values(
            done_steps=step + 1,
            status=ImportStatus.done if step + 1 >= item.total_steps else ImportStatus.applying,
            finished_at=now if step + 1 >= item.total_steps else None,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(item)
        return None
    raw = item.raw
    chunks = -(-len(raw) // CHUNK)
    if step < chunks:
        # Parents are linked in the last step, once every institution exists.
        part = [{**r, "parent_institution": ""} for r in raw[step * CHUNK : (step + 1) * CHUNK]]
        import_rows(session, part, start=2 + step * CHUNK)
    else:
        import_rows(session, raw)
    session.refresh(item)
    return step


def import_now(session: Session, raw: list[dict[str, str]]) -> tuple[Preview, ImportResult]:
    """Preview, then apply in the caller's transaction when no row is bad (the API's way).

    Raises Invalid when a row is bad; nothing is written then."""
    shown = preview(session, raw)
    if shown.errors:
        raise BadRows(shown)
    return shown, import_rows(session, raw)


class BadRows(Invalid):
    code = "bad_rows"

    def __init__(self, shown: Preview) -> None:
        super().__init__(
            f"Строк с ошибками: {len(shown.errors)}; ничего не изменено. "
            f"Первая: строка {shown.errors[0].number}: {shown.errors[0].reason}"
        )
        self.preview = shown


def summary(preview: dict[str, Any], filename: str) -> str:
    """One line for the audit log: «Импорт «файл»: строк 12, добавлено …»."""
    created = Counter(preview.get("created") or {})
    updated = Counter(preview.get("updated") or {})
    return (
        f"Импорт «{filename}»: строк {preview.get('rows', 0)}; добавлено: территорий "
        f"{created['territory']}, учреждений {created['institution']}, страниц {created['page']}; "
        f"изменено: {updated['territory'] + updated['institution'] + updated['page']}"
    )


def recent(session: Session, limit: int = 5) -> list[DirectoryImport]:
    return list(
        session.exec(
            select(DirectoryImport)
            .where(col(DirectoryImport.status) != ImportStatus.cancelled)
            .order_by(col(DirectoryImport.id).desc())
            .limit(limit)
        ).all()
    )
