"""The directory in the browser: the territory tree, institutions and their pages
(create, edit, move, switch a page off and on), a page's own screen, the registry
import with its preview and progress, and the export.

Every change goes through `app.directory.service` (as the JSON API does) and is
written to the audit log in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth import service as auth_service
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.directory import import_admin, service, tree
from app.directory.models import (
    RETENTION_DAYS_MAX,
    SECTOR_NAMES_RU,
    Institution,
    InstitutionCreate,
    InstitutionUpdate,
    Page,
    PageUpdate,
    Territory,
    TerritoryCreate,
    TerritoryKind,
    TerritoryUpdate,
)

router = APIRouter(include_in_schema=False)

KIND_NAMES_RU = {
    TerritoryKind.federal: "Федерация",
    TerritoryKind.region: "Регион",
    TerritoryKind.municipality: "Муниципалитет",
    TerritoryKind.settlement: "Поселение",
}
DONE = {
    "territory": "Территория сохранена.",
    "institution": "Учреждение сохранено.",
    "page": "Страница сохранена.",
    "off": "Страница отключена: новые события с неё не принимаются, история сохранена.",
    "on": "Страница снова принимает события.",
}
INST_FIELDS = ("name", "territory_id", "sector", "parent_id", "retention_days")
PAGE_FIELDS = ("name", "url", "institution_id", "staff_ids", "is_active")


def _messages(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "form"
        if error["type"] in ("string_too_short", "missing"):
            errors[where] = "Заполните это поле"
        elif error["type"] == "string_too_long":
            errors[where] = "Слишком длинное значение: сократите его"
        elif where == "timezone":
            errors[where] = "Выберите часовой пояс из списка"
        else:
            errors[where] = "Выберите значение из списка"
    return errors


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


# --- the tree ----------------------------------------------------------------------


def _directory_page(
    view: View,
    session: Session,
    *,
    territory_id: int | None,
    q: str,
    done: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    nodes = tree.territory_nodes(session)
    selected = next((n.territory for n in nodes if n.territory.id == territory_id), None)
    if territory_id is not None and selected is None:
        raise NotFound("Территория не найдена")
    if selected is None and not q and nodes:
        selected = nodes[0].territory
    entries = (
        tree.search(session, q)
        if q
        else tree.institutions_on(session, selected.id or 0)
        if selected
        else []
    )
    return view.render(
        "admin/directory.html",
        status_code=status_code,
        nodes=nodes,
        selected=selected,
        chain=service.territory_chain(session, selected) if selected else [],
        entries=entries,
        q=q,
        done=DONE.get(done, ""),
        errors=errors or {},
        form=form or {},
        sectors=SECTOR_NAMES_RU,
        kinds=KIND_NAMES_RU,
        timezones=auth_service.TIMEZONES,
        search_limit=tree.SEARCH_LIMIT,
    )


@router.get("/admin/directory", response_class=HTMLResponse, name="admin:directory")
def directory(
    session: SessionDep,
    user: WebAdminDep,
    view: ViewDep,
    territory: Annotated[str, Query()] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    done: str = "",
) -> HTMLResponse:
    """The territory tree with the chosen territory's institutions, or a search."""
    return _directory_page(view, session, territory_id=_int(territory), q=q.strip(), done=done)


@router.post("/admin/directory/territories", name="admin:territory_create")
def territory_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    parent_id: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
) -> Response:
    parent = _int(parent_id)
    form = {"t_name": name, "t_kind": kind, "t_timezone": timezone}
    try:
        data = TerritoryCreate.model_validate(
            {
                "name": name.strip(),
                "kind": kind,
                "parent_id": parent,
                "timezone": timezone or "Europe/Moscow",
            }
        )
        territory = service.create_territory(session, data)
    except ValidationError as exc:
        errors = {f"t_{k}": v for k, v in _messages(exc).items()}
        return _directory_page(
            view, session, territory_id=parent, q="", errors=errors, form=form, status_code=422
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _directory_page(
            view,
            session,
            territory_id=parent,
            q="",
            errors={"t_name": exc.message},
            form=form,
            status_code=422,
        )
    audit.record(
        session,
        actor=user,
        action="territory.create",
        object_type="territory",
        object_id=territory.id,
        after=audit.snapshot(territory, ("full_name", "kind", "timezone")),
        address=client_address(request),
        summary=f"Территория «{territory.full_name}»",
    )
    session.commit()
    return RedirectResponse(
        f"/admin/directory?territory={territory.id}&done=territory", status_code=303
    )


def _territory_or_404(session: Session, territory_id: int) -> Territory:
    territory = service.get_territory(session, territory_id)
    if territory is None:
        raise NotFound("Страница не найдена")
    return territory


@router.get(
    "/admin/directory/territories/{territory_id}",
    response_class=HTMLResponse,
    name="admin:territory",
)
def territory_form(
    territory_id: int, session: SessionDep, user: WebAdminDep, view: ViewDep
) -> HTMLResponse:
    territory = _territory_or_404(session, territory_id)
    return _territory_page(view, session, territory, {}, {})


def _territory_page(
    view: View,
    session: Session,
    territory: Territory,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    return view.render(
        "admin/directory_territory.html",
        status_code=status_code,
        territory=territory,
        chain=service.territory_chain(session, territory),
        form={
            "name": territory.name,
            "kind": str(territory.kind),
            "timezone": territory.timezone,
            **form,
        },
        errors=errors,
        kinds=KIND_NAMES_RU,
        timezones=auth_service.TIMEZONES,
    )


@router.post("/admin/directory/territories/{territory_id}", name="admin:territory_save")
def territory_save(
    territory_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
) -> Response:
    territory = _territory_or_404(session, territory_id)
    before = audit.snapshot(territory, ("full_name", "kind", "timezone"))
    form = {"name": name, "kind": kind, "timezone": timezone}
    try:
        data = TerritoryUpdate.model_validate(
            {"name": name.strip(), "kind": kind, "timezone": timezone}
        )
        service.update_territory(session, territory_id, data)
    except ValidationError as exc:
        return _territory_page(view, session, territory, form, _messages(exc), 422)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _territory_page(view, session, territory, form, {"name": exc.message}, 422)
    audit.record(
        session,
        actor=user,
        action="territory.update",
        object_type="territory",
        object_id=territory_id,
        before=before,
        after=audit.snapshot(territory, ("full_name", "kind", "timezone")),
        address=client_address(request),
        summary=f"Территория «{territory.full_name}»",
    )
    session.commit()
    return RedirectResponse(
        f"/admin/directory?territory={territory_id}&done=territory", status_code=303
    )


# --- institutions ------------------------------------------------------------------


@router.post("/admin/directory/institutions", name="admin:institution_create")
def institution_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    sector: Annotated[str, Form()] = "",
    territory_id: Annotated[str, Form()] = "",
) -> Response:
    territory = _int(territory_id)
    form = {"i_name": name, "i_sector": sector}
    try:
        data = InstitutionCreate.model_validate(
            {"name": name.strip(), "sector": sector, "territory_id": territory or 0}
        )
        institution = service.create_institution(session, data)
    except ValidationError as exc:
        errors = {f"i_{k}": v for k, v in _messages(exc).items()}
        return _directory_page(
            view, session, territory_id=territory, q="", errors=errors, form=form, status_code=422
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _directory_page(
            view,
            session,
            territory_id=territory,
            q="",
            errors={"i_name": exc.message},
            form=form,
            status_code=422,
        )
    audit.record(
        session,
        actor=user,
        action="institution.create",
        object_type="institution",
        object_id=institution.id,
        after=audit.snapshot(institution, INST_FIELDS),
        address=client_address(request),
        summary=f"Учреждение «{institution.name}»",
    )
    session.commit()
    return RedirectResponse(
        f"/admin/directory/institutions/{institution.id}?done=institution", status_code=303
    )


def _institution_or_404(session: Session, institution_id: int) -> Institution:
    institution = service.get_institution(session, institution_id)
    if institution is None:
        raise NotFound("Страница не найдена")
    return institution


def _institution_page(
    view: View,
    session: Session,
    institution: Institution,
    form: dict[str, Any],
    errors: dict[str, str],
    *,
    default_retention: int,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    territory = _territory_or_404(session, institution.territory_id)
    chain_ids = [t.id for t in service.territory_chain(session, territory)]
    parents = session.exec(
        select(Institution)
        .where(col(Institution.territory_id).in_(chain_ids), col(Institution.id) != institution.id)
        .order_by(col(Institution.name))
    ).all()
    return view.render(
        "admin/directory_institution.html",
        status_code=status_code,
        institution=institution,
        territory=territory,
        chain=service.territory_chain(session, territory),
        pages=service.list_pages(session, institution_id=institution.id, limit=500),
        parents=[p for p in parents if f"/{institution.id}/" not in p.path],
        territories=tree.territory_nodes(session),
        form={
            "name": institution.name,
            "sector": str(institution.sector),
            "territory_id": institution.territory_id,
            "parent_id": institution.parent_id,
            "retention_days": _text(institution.retention_days),
            **form,
        },
        errors=errors,
        done=DONE.get(done, ""),
        sectors=SECTOR_NAMES_RU,
        default_retention=default_retention,
    )


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _retention(value: str) -> tuple[int | None, str | None]:
    """The form's retention period: (days or None for the regional default, error)."""
    value = value.strip()
    if not value:
        return None, None
    days = _int(value)
    if days is None or days > RETENTION_DAYS_MAX:
        return None, (
            f"Укажите число дней от 0 до {RETENTION_DAYS_MAX} "
            "или оставьте поле пустым для срока по умолчанию"
        )
    return days, None


@router.get(
    "/admin/directory/institutions/{institution_id}",
    response_class=HTMLResponse,
    name="admin:institution",
)
def institution_form(
    institution_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: WebAdminDep,
    view: ViewDep,
    done: str = "",
) -> HTMLResponse:
    """An institution: its name, sector, territory (move), parent and how long it keeps
    personal data; its pages."""
    institution = _institution_or_404(session, institution_id)
    return _institution_page(
        view, session, institution, {}, {}, default_retention=settings.retention_days, done=done
    )


@router.post("/admin/directory/institutions/{institution_id}", name="admin:institution_save")
def institution_save(
    institution_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    sector: Annotated[str, Form()] = "",
    territory_id: Annotated[str, Form()] = "",
    parent_id: Annotated[str, Form()] = "",
    retention_days: Annotated[str, Form()] = "",
) -> Response:
    institution = _institution_or_404(session, institution_id)
    before = audit.snapshot(institution, INST_FIELDS)
    form = {
        "name": name,
        "sector": sector,
        "territory_id": _int(territory_id),
        "parent_id": _int(parent_id),
        "retention_days": retention_days,
    }
    default = settings.retention_days
    days, problem = _retention(retention_days)
    errors = {"retention_days": problem} if problem else {}
    try:
        data = InstitutionUpdate.model_validate(
            {
                "name": name.strip(),
                "sector": sector,
                "territory_id": _int(territory_id),
                "parent_id": _int(parent_id),
                "retention_days": days,
            }
        )
    except ValidationError as exc:
        errors = _messages(exc) | errors
    if errors:
        return _institution_page(
            view, session, institution, form, errors, default_retention=default, status_code=422
        )
    try:
        service.update_institution(session, institution_id, data)
    except DomainError as exc:
        # The institution exists (loaded above): a missing territory or parent is a stale
        # choice in the form, said beside the form like a duplicate name or a cycle.
        session.rollback()
        institution = _institution_or_404(session, institution_id)
        field = "parent_id" if exc.code == "cycle" else "name"
        return _institution_page(
            view,
            session,
            institution,
            form,
            {field: exc.message},
            default_retention=default,
            status_code=422,
        )
    audit.record(
        session,
        actor=user,
        action="institution.update",
        object_type="institution",
        object_id=institution_id,
        before=before,
        after=audit.snapshot(institution, INST_FIELDS),
        address=client_address(request),
        summary=f"Учреждение «{institution.name}»",
    )
    session.commit()
    return RedirectResponse(
        f"/admin/directory/institutions/{institution_id}?done=institution", status_code=303
    )


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
    institution = _institution_or_404(session, page.institution_id)
    return view.render(
        "admin/pages/detail.html",
        status_code=status_code,
        page=page,
        info=service.page_read(page, base_url),
        institution=institution,
        territory=_territory_or_404(session, institution.territory_id),
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
        "institution_id": _int(institution_id),
        "staff_ids": staff_ids,
    }
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Укажите название страницы"
    if url.strip() and not url.strip().startswith(("https://", "http://")):
        errors["url"] = "Адрес начинается с https://"
    if not all(i.lstrip("-").isdigit() for i in ids):
        errors["staff_ids"] = "Укажите числовые id через запятую, например 1234, 5678"
    if _int(institution_id) is None:
        errors["institution_id"] = "Выберите учреждение"
    if errors:
        return _page_page(view, session, page, settings.base_url, form, errors, status_code=422)
    data = PageUpdate(
        name=name.strip(), url=url.strip(), institution_id=_int(institution_id), staff_ids=ids
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
router.include_router(import_admin.router)
