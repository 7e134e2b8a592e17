"""The directory in the browser: the territory tree and its territories (institutions are
`app.directory.institution_admin`, a page's own screen `app.directory.page_admin`, the
registry import with its preview and progress and the export `import_admin`).

Every change goes through `app.directory.service` (as the JSON API does) and is
written to the audit log in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import audit
from app.auth import service as auth_service
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.directory import import_admin, service, tree
from app.directory.models import (
    SECTOR_NAMES_RU,
    Institution,
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


def messages(exc: ValidationError) -> dict[str, str]:
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


def int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


# --- the tree ----------------------------------------------------------------------


def directory_page(
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
    return directory_page(
        view, session, territory_id=int_or_none(territory), q=q.strip(), done=done
    )


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
    parent = int_or_none(parent_id)
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
        errors = {f"t_{k}": v for k, v in messages(exc).items()}
        return directory_page(
            view, session, territory_id=parent, q="", errors=errors, form=form, status_code=422
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return directory_page(
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


def territory_or_404(session: Session, territory_id: int) -> Territory:
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
    territory = territory_or_404(session, territory_id)
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
    territory = territory_or_404(session, territory_id)
    before = audit.snapshot(territory, ("full_name", "kind", "timezone"))
    form = {"name": name, "kind": kind, "timezone": timezone}
    try:
        data = TerritoryUpdate.model_validate(
            {"name": name.strip(), "kind": kind, "timezone": timezone}
        )
        service.update_territory(session, territory_id, data)
    except ValidationError as exc:
        return _territory_page(view, session, territory, form, messages(exc), 422)
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


def institution_or_404(session: Session, institution_id: int) -> Institution:
    institution = service.get_institution(session, institution_id)
    if institution is None:
        raise NotFound("Страница не найдена")
    return institution


router.include_router(import_admin.router)
