"""Administration of people: `/admin/users` (API tokens and the audit log are
`app.auth.access_admin`, the invitation link a new user opens is
`app.auth.invite_views`).

Every change goes through `app.auth.users` / `app.auth.tokens`, the functions the JSON
API calls, and is audited there. Forms work without JavaScript (303 back with
`?done=`, or 422 with the error summary); a password or link is shown once, in the
answer to the POST that made it, never stored in a page that can be reopened.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import audit, invitations, tokens, user_form, users
from app.auth import service as auth_service
from app.auth.deps import (
    SettingsDep,
    WebAdminDep,
    WebAdminFormDep,
    client_address,
)
from app.auth.models import ROLE_NAMES_RU, Role, User, UserCreate, UserUpdate
from app.core.clock import ClockDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.json_api import PathId
from app.core.web import View, ViewDep
from app.directory.models import SECTOR_NAMES_RU

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
NO_STORE = {"Cache-Control": "no-store"}

DONE_RU = {
    "saved": "Изменения сохранены.",
    "deactivated": "Пользователь отключён: его входы завершены, токены отозваны.",
    "activated": "Пользователь снова может входить. Его прежние токены остаются отозванными.",
    "revoked": "Токен отозван: программы с ним больше не получат доступ.",
}


def _render_form(
    view: View,
    session: Session,
    template: str,
    *,
    form: user_form.UserForm,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return view.render(
        template,
        status_code=status_code,
        form=form,
        errors=errors or {},
        roles=ROLE_NAMES_RU,
        territories=user_form.territories(session),
        institutions=user_form.institutions(session),
        sectors=SECTOR_NAMES_RU,
        **context,
    )


# --- /admin/users ---------------------------------------------------------------------


@router.get("/admin/users", name="admin:users", response_class=HTMLResponse)
def user_list(
    request: Request,
    session: SessionDep,
    admin: WebAdminDep,
    view: ViewDep,
    q: Annotated[str, Query(max_length=150)] = "",
    role: str = "",
    active: str = "1",
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """People with their role and scope; search by login, name or e-mail."""
    role_filter = Role(role) if role in Role.__members__ else None
    active_filter = {"1": True, "0": False}.get(active)
    people, more = users.list_users(
        session, q=q, role=role_filter, active=active_filter, limit=PAGE_SIZE, after_id=after
    )
    template = "admin/users_list.html" if view.wants_fragment else "admin/users.html"
    return view.render(
        template,
        people=people,
        scopes=user_form.scopes(session, people),
        more=more,
        next_after=people[-1].id if more and people else None,
        filters={"q": q, "role": role if role_filter else "", "active": active},
        roles=ROLE_NAMES_RU,
        counts=users.count_users(session),
        now=request.app.state.clock(),
    )


@router.get("/admin/users/new", name="admin:user_new", response_class=HTMLResponse)
def user_new(session: SessionDep, admin: WebAdminDep, view: ViewDep) -> HTMLResponse:
    return _render_form(
        view, session, "admin/users_new.html", form=user_form.UserForm(role="operator")
    )


def _credential_page(
    view: View,
    settings: Settings,
    request: Request,
    *,
    person: User,
    credential: users.Credential,
    created: bool,
) -> HTMLResponse:
    link = None
    if credential.invitation:
        base = settings.base_url.rstrip("/") or str(request.base_url).rstrip("/")
        link = invitation_link(base, credential.invitation)
    return view.render(
        "admin/users_credential.html",
        headers=NO_STORE,
        person=person,
        password=credential.password,
        link=link,
        created=created,
        days=invitations.INVITATION_LIFETIME.days,
    )


@router.post("/admin/users/new", name="admin:user_create", response_class=HTMLResponse)
def user_create(
    request: Request,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    login: Annotated[str, Form(max_length=1000)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    institution_ids: Annotated[list[str] | None, Form()] = None,
    scope: Annotated[str, Form(max_length=20)] = "",
    sector: Annotated[str, Form(max_length=32)] = "",
    credential: Annotated[str, Form(max_length=20)] = "password",
) -> Response:
    form = user_form.UserForm(
        login=login.strip(),
        name=name.strip(),
        email=email.strip(),
        role=role,
        institution_ids=user_form.ids_from(institution_ids or []),
        scope=scope,
        sector=sector.strip(),
        credential="invite" if credential == "invite" else "password",
    )
    chosen = form.role_or_none()
    if chosen is None:
        return _render_form(
            view,
            session,
            "admin/users_new.html",
            form=form,
            errors={"role": "Выберите роль: оператор, куратор или администратор"},
            status_code=422,
        )
    territory_id, institution_id = form.scope_ids()
    try:
        person, made = users.create(
            session,
            UserCreate(
                login=form.login or "--",
                name=form.name,
                role=chosen,
                email=form.email or None,
                institution_ids=list(form.institution_ids),
                territory_id=territory_id if chosen == Role.supervisor else None,
                institution_id=institution_id if chosen == Role.supervisor else None,
                sector=form.sector or None if chosen == Role.supervisor else None,
            ),
            by=admin,
            now=clock(),
            address=client_address(request),
            invite=form.credential == "invite",
        )
    except auth_service.FormInvalid as exc:
        session.rollback()
        return _render_form(
            view, session, "admin/users_new.html", form=form, errors=exc.errors, status_code=422
        )
    session.commit()
    return _credential_page(view, settings, request, person=person, credential=made, created=True)


def _render_user(
    request: Request,
    view: View,
    session: Session,
    person: User,
    *,
    form: user_form.UserForm | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    assert person.id is not None
    recent, _ = audit.entries(
        session, audit.AuditFilter(object_type="user", object_id=str(person.id)), limit=5
    )
    own_tokens, _ = tokens.listing(session, user_id=person.id, limit=20)
    return _render_form(
        view,
        session,
        "admin/users_detail.html",
        form=form or user_form.UserForm.of(session, person),
        errors=errors,
        status_code=status_code,
        person=person,
        scope=user_form.scopes(session, [person])[person.id],
        recent=recent,
        own_tokens=[t for t, _ in own_tokens],
        done=DONE_RU.get(request.query_params.get("done", "")),
        now=request.app.state.clock(),
    )


@router.get("/admin/users/{user_id}", name="admin:user", response_class=HTMLResponse)
def user_detail(
    request: Request, user_id: PathId, session: SessionDep, admin: WebAdminDep, view: ViewDep
) -> HTMLResponse:
    person = users.get_user(session, user_id)
    return _render_user(request, view, session, person)


def _back_to(request: Request, user_id: int, done: str) -> RedirectResponse:
    url = request.url_for("admin:user", user_id=user_id).path
    return RedirectResponse(f"{url}?done={done}", status_code=303)


@router.post("/admin/users/{user_id}", name="admin:user_save")
def user_save(
    request: Request,
    user_id: PathId,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    institution_ids: Annotated[list[str] | None, Form()] = None,
    scope: Annotated[str, Form(max_length=20)] = "",
    sector: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    person = users.get_user(session, user_id)
    form = user_form.UserForm(
        login=person.login,
        name=name.strip(),
        email=email.strip(),
        role=role,
        institution_ids=user_form.ids_from(institution_ids or []),
        scope=scope,
        sector=sector.strip(),
    )
    chosen = form.role_or_none()
    territory_id, institution_id = form.scope_ids()
    try:
        if chosen is None:
            raise auth_service.FormInvalid(
                {"role": "Выберите роль: оператор, куратор или администратор"}
            )
        users.update(
            session,
            person,
            UserUpdate(
                name=form.name,
                email=form.email,
                role=chosen,
                institution_ids=list(form.institution_ids),
                territory_id=territory_id,
                institution_id=institution_id,
                sector=form.sector or None,
            ),
            by=admin,
            now=clock(),
            address=client_address(request),
        )
    except auth_service.FormInvalid as exc:
        session.rollback()
        session.refresh(person)
        return _render_user(
            request, view, session, person, form=form, errors=exc.errors, status_code=422
        )
    session.commit()
    return _back_to(request, user_id, "saved")


@router.post("/admin/users/{user_id}/deactivate", name="admin:user_deactivate")
def user_deactivate(
    request: Request,
    user_id: PathId,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
) -> Response:
    person = users.get_user(session, user_id)
    try:
        users.deactivate(session, person, by=admin, now=clock(), address=client_address(request))
    except auth_service.FormInvalid as exc:
        session.rollback()
        session.refresh(person)
        return _render_user(request, view, session, person, errors=exc.errors, status_code=422)
    session.commit()
    return _back_to(request, user_id, "deactivated")


@router.post("/admin/users/{user_id}/activate", name="admin:user_activate")
def user_activate(
    request: Request,
    user_id: PathId,
    session: SessionDep,
    admin: WebAdminFormDep,
    clock: ClockDep,
) -> Response:
    person = users.get_user(session, user_id)
    users.activate(session, person, by=admin, now=clock(), address=client_address(request))
    session.commit()
    return _back_to(request, user_id, "activated")


@router.post("/admin/users/{user_id}/reset", name="admin:user_reset", response_class=HTMLResponse)
def user_reset(
    request: Request,
    user_id: PathId,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    credential: Annotated[str, Form(max_length=20)] = "password",
) -> Response:
    person = users.get_user(session, user_id)
    if not person.is_active:
        return _render_user(
            request,
            view,
            session,
            person,
            errors={"credential": "Пользователь отключён — сначала включите его"},
            status_code=422,
        )
    made = users.reset_password(
        session,
        person,
        by=admin,
        now=clock(),
        address=client_address(request),
        invite=credential == "invite",
    )
    session.commit()
    return _credential_page(view, settings, request, person=person, credential=made, created=False)


def invitation_link(base: str, plain: str) -> str:
    return f"{base.rstrip('/')}/invite?{urlencode({'token': plain})}"
