"""The registry spreadsheet in the browser: export the directory, upload a file, see
its preview (what each row adds or changes, every bad row), apply it in steps with a
progress bar (htmx asks for each next step) or all at once without JavaScript, or
cancel. The work is `app.directory.imports`; each import is in the audit log."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import audit
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError
from app.core.web import View, ViewDep
from app.directory import imports, spreadsheet, spreadsheet_export
from app.directory.imports import MAX_UPLOAD
from app.directory.models import DirectoryImport, ImportStatus

router = APIRouter(include_in_schema=False)

DONE = {"cancelled": "Импорт отменён, справочник не изменён."}


# --- export ------------------------------------------------------------------------


@router.get("/admin/directory/export", name="admin:directory_export")
def directory_export(
    session: SessionDep, user: WebAdminDep, format: Annotated[str, Query()] = "csv"
) -> Response:
    """The whole directory in the import's format (CSV for Excel, or XLSX)."""
    suffix = "xlsx" if format == "xlsx" else "csv"
    rows = spreadsheet_export.export_rows(session)
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"directory.{suffix}"
        spreadsheet.write_rows(path, rows)
        data = path.read_bytes()
    media = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if suffix == "xlsx"
        else "text/csv; charset=utf-8"
    )
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="directory.{suffix}"'},
    )


# --- import ------------------------------------------------------------------------


def _import_page(
    view: View,
    session: Session,
    *,
    item: DirectoryImport | None = None,
    error: str = "",
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    template = "admin/import.html"
    if (
        item is not None
        and view.wants_fragment
        and item.status
        in (
            ImportStatus.applying,
            ImportStatus.done,
        )
    ):
        template = "admin/import_progress.html"
    return view.render(
        template,
        status_code=status_code,
        item=item,
        preview=item.preview if item else None,
        error=error,
        done=DONE.get(done, ""),
        recent=imports.recent(session),
        shown_limit=200,
        object_names={"territory": "Территория", "institution": "Учреждение", "page": "Страница"},
        field_names={
            "timezone": "часовой пояс",
            "territory_kind": "тип территории",
            "sector": "отрасль",
            "parent_institution": "вышестоящее учреждение",
            "institution": "учреждение",
            "page_name": "название",
            "url": "ссылка",
        },
    )


@router.get("/admin/import", response_class=HTMLResponse, name="admin:import")
def import_page(
    session: SessionDep,
    user: WebAdminDep,
    view: ViewDep,
    clock: ClockDep,
    token: Annotated[str, Query(max_length=64)] = "",
    done: str = "",
) -> HTMLResponse:
    """Upload a registry; with `token`, its preview, progress or result."""
    item = imports.get_import(session, token, now=clock()) if token else None
    return _import_page(view, session, item=item, done=done)


@router.post("/admin/import", name="admin:import_upload")
def import_upload(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Read and check a registry, dry-run it, keep it, and show its preview."""
    if file is None or not file.filename:
        return _import_page(view, session, error="Выберите файл .csv или .xlsx", status_code=422)
    data = file.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return _import_page(
            view, session, error="Файл больше 20 МБ: разделите его на части", status_code=422
        )
    try:
        raw = spreadsheet.read_upload(file.filename, data)
        item, _ = imports.start(session, raw, filename=file.filename, by=user.id, now=clock())
    except DomainError as exc:
        session.rollback()
        return _import_page(view, session, error=exc.message, status_code=422)
    session.commit()
    return RedirectResponse(f"/admin/import?token={item.token}", status_code=303)


@router.post("/admin/import/apply", name="admin:import_apply")
def import_apply(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Apply a previewed import: one step per htmx request (the progress bar asks for
    the next), or every step at once for a browser without JavaScript."""
    item = imports.get_import(session, token, now=clock())
    while True:
        step = imports.apply_step(session, item, now=clock())
        if step == 0:
            audit.record(
                session,
                actor=user,
                action="directory.import",
                object_type="directory_import",
                object_id=item.id,
                after={
                    "file": item.filename,
                    "rows": item.preview.get("rows"),
                    "created": item.preview.get("created"),
                    "updated": item.preview.get("updated"),
                },
                address=client_address(request),
                summary=imports.summary(item.preview, item.filename),
            )
        session.commit()
        if step is None or view.is_htmx:
            break
    if view.is_htmx:
        return view.render("admin/import_progress.html", item=item, preview=item.preview, poll=True)
    return RedirectResponse(f"/admin/import?token={item.token}", status_code=303)


@router.post("/admin/import/cancel", name="admin:import_cancel")
def import_cancel(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    clock: ClockDep,
    token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    item = imports.get_import(session, token, now=clock())
    imports.cancel(session, item)
    audit.record(
        session,
        actor=user,
        action="directory.import_cancel",
        object_type="directory_import",
        object_id=item.id,
        address=client_address(request),
        summary=f"Импорт «{item.filename}» отменён",
    )
    session.commit()
    return RedirectResponse("/admin/import?done=cancelled", status_code=303)
