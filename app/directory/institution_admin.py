"""The directory in the browser: institutions (create, edit, move, retention), through
`app.directory.service` as the JSON API does, audited in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.core.db import SessionDep
from app.core.errors import DomainError
from app.core.web import View, ViewDep
from app.directory import service, tree
from app.directory.admin import (
    DONE,
    INST_FIELDS,
    directory_page,
    institution_or_404,
    int_or_none,
    messages,
    territory_or_404,
)
from app.directory.models import (
    RETENTION_DAYS_MAX,
    SECTOR_NAMES_RU,
    Institution,
    InstitutionCreate,
    InstitutionUpdate,
)

router = APIRouter(include_in_schema=False)


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
    territory = int_or_none(territory_id)
    form = {"i_name": name, "i_sector": sector}
    try:
        data = InstitutionCreate.model_validate(
            {"name": name.strip(), "sector": sector, "territory_id": territory or 0}
        )
        institution = service.create_institution(session, data)
    except ValidationError as exc:
        errors = {f"i_{k}": v for k, v in messages(exc).items()}
        return directory_page(
            view, session, territory_id=territory, q="", errors=errors, form=form, status_code=422
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return directory_page(
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
    territory = territory_or_404(session, institution.territory_id)
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
    days = int_or_none(value)
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
    institution = institution_or_404(session, institution_id)
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
    institution = institution_or_404(session, institution_id)
    before = audit.snapshot(institution, INST_FIELDS)
    form = {
        "name": name,
        "sector": sector,
        "territory_id": int_or_none(territory_id),
        "parent_id": int_or_none(parent_id),
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
                "territory_id": int_or_none(territory_id),
                "parent_id": int_or_none(parent_id),
                "retention_days": days,
            }
        )
    except ValidationError as exc:
        errors = messages(exc) | errors
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
        institution = institution_or_404(session, institution_id)
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
