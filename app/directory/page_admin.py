"""The directory in the browser: a page's own screen (its name, address, institution,
staff) and switching it off and on, through `app.directory.service` as the JSON API
does, audited in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import audit
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.web import View, ViewDep
from app.directory import service, tree
from app.directory.admin import (
    DONE,
    PAGE_FIELDS,
    institution_or_404,
    int_or_none,
    territory_or_404,
)
from app.directory.models import (
    Page,
    PageUpdate,
)

router = APIRouter(include_in_schema=False)


# --- pages -------------------------------------------------------------------------


def _page_or_404(session: Session, page_id: int) -> Page:
    page = service.get_page(session, page_id)
    if page is None:
        raise NotFound("Страница не найдена")
    return page


def _page_page(
    view: View,
    session: Session,
    page: Page,
    base_url: str,
    form: dict[str, Any],
    errors: dict[str, str],
    *,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    institution = institution_or_404(session, page.institution_id)
    return view.render(
        "admin/pages/detail.html",
        status_code=status_code,
        page=page,
        info=service.page_read(page, base_url),
        institution=institution,
        territory=territory_or_404(session, institution.territory_id),
        institutions=tree.institution_choices(session),
        form={
            "name": page.name,
            "url": page.url,
            "institution_id": page.institution_id,
            "staff_ids": ", ".join(page.staff_ids),
            **form,
        },
        errors=errors,
        done=DONE.get(done, ""),
    )


@router.get("/admin/pages/{page_id}", response_class=HTMLResponse, name="admin:page")
def page_detail(
    page_id: int,
    session: SessionDep,
    user: WebAdminDep,
    view: ViewDep,
    settings: SettingsDep,
    done: str = "",
) -> HTMLResponse:
    """A page: its settings, whether it receives events, its connection health."""
    page = _page_or_404(session, page_id)
    return _page_page(view, session, page, settings.base_url, {}, {}, done=done)


@router.post("/admin/pages/{page_id}", name="admin:page_save")
def page_save(
    page_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    institution_id: Annotated[str, Form()] = "",
    staff_ids: Annotated[str, Form()] = "",
) -> Response:
    page = _page_or_404(session, page_id)
    before = audit.snapshot(page, PAGE_FIELDS)
    ids = [part.strip() for part in staff_ids.replace(";", ",").split(",") if part.strip()]
    form = {
        "name": name,
        "url": url,
        "institution_id": int_or_none(institution_id),
        "staff_ids": staff_ids,
    }
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Укажите название страницы"
    if url.strip() and not url.strip().startswith(("https://", "http://")):
        errors["url"] = "Адрес начинается с https://"
    if not all(i.lstrip("-").isdigit() for i in ids):
        errors["staff_ids"] = "Укажите числовые id через запятую, например 1234, 5678"
    if int_or_none(institution_id) is None:
        errors["institution_id"] = "Выберите учреждение"
    if errors:
        return _page_page(view, session, page, settings.base_url, form, errors, status_code=422)
    data = PageUpdate(
        name=name.strip(),
        url=url.strip(),
        institution_id=int_or_none(institution_id),
        staff_ids=ids,
    )
    service.update_page(session, page_id, data, get_cipher(request))
    audit.record(
        session,
        actor=user,
        action="page.update",
        object_type="page",
        object_id=page_id,
        before=before,
        after=audit.snapshot(page, PAGE_FIELDS),
        address=client_address(request),
        summary=f"Страница «{page.name}»",
    )
    session.commit()
    return RedirectResponse(f"/admin/pages/{page_id}?done=page", status_code=303)


def _switch(request: Request, session: Session, user: User, page_id: int, active: bool) -> Response:
    page = _page_or_404(session, page_id)
    was = page.is_active
    service.update_page(session, page_id, PageUpdate(is_active=active), get_cipher(request))
    if was != active:
        audit.record(
            session,
            actor=user,
            action="page.activate" if active else "page.deactivate",
            object_type="page",
            object_id=page_id,
            before={"is_active": was},
            after={"is_active": active},
            address=client_address(request),
            summary=f"Страница «{page.name}»",
        )
    session.commit()
    return RedirectResponse(f"/admin/pages/{page_id}?done={'on' if active else 'off'}", 303)


@router.post("/admin/pages/{page_id}/deactivate", name="admin:page_deactivate")
def page_deactivate(
    page_id: int, request: Request, session: SessionDep, user: WebAdminFormDep
) -> Response:
    """The page stops receiving events; its questions and history stay."""
    return _switch(request, session, user, page_id, False)


@router.post("/admin/pages/{page_id}/activate", name="admin:page_activate")
def page_activate(
    page_id: int, request: Request, session: SessionDep, user: WebAdminFormDep
) -> Response:
    return _switch(request, session, user, page_id, True)


# The registry's export and import pages (/admin/directory/export, /admin/import).
