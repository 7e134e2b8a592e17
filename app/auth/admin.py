"""Administration of people and access: `/admin/users`, `/admin/tokens`, `/admin/audit`,
and the invitation link a new user opens to choose a password (`/invite?token=…`: in the
query, not the path, so the request log, which records paths, never holds it).

Every change goes through `app.auth.users` / `app.auth.tokens`, the functions the JSON
API calls, and is audited there. Forms work without JavaScript (303 back with
`?done=`, or 422 with the error summary); a password or link is shown once, in the
answer to the POST that made it, never stored in a page that can be reopened.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import audit, audit_text, tokens, user_form, users
from app.auth import service as auth_service
from app.auth.deps import (
    CSRF_COOKIE,
    SettingsDep,
    WebAdminDep,
    WebAdminFormDep,
    client_address,
)
from app.auth.models import ROLE_NAMES_RU, Role, User, UserCreate, UserUpdate
from app.core.clock import ClockDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import Invalid
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
        days=users.INVITATION_LIFETIME.days,
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


# --- /admin/tokens --------------------------------------------------------------------


def _render_tokens(
    request: Request,
    view: View,
    session: Session,
    *,
    user_id: int | None,
    show: str,
    before: int | None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, more = tokens.listing(
        session, user_id=user_id, active_only=show != "all", limit=PAGE_SIZE, before_id=before
    )
    people = session.exec(select(User).where(col(User.is_active)).order_by(col(User.login))).all()
    return view.render(
        "admin/tokens.html",
        status_code=status_code,
        rows=rows,
        more=more,
        next_before=rows[-1][0].id if more and rows else None,
        people=people,
        filters={"user_id": user_id, "show": show},
        errors=errors or {},
        form=form or {"user_id": user_id, "name": ""},
        done=DONE_RU.get(request.query_params.get("done", "")),
        now=request.app.state.clock(),
    )


@router.get("/admin/tokens", name="admin:tokens", response_class=HTMLResponse)
def token_list(
    request: Request,
    session: SessionDep,
    admin: WebAdminDep,
    view: ViewDep,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    show: str = "active",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """API tokens with owner, last use and revocation; a form to issue one."""
    return _render_tokens(request, view, session, user_id=user_id, show=show, before=before)


@router.post("/admin/tokens", name="admin:token_create", response_class=HTMLResponse)
def token_create(
    request: Request,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    user_id: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    owner_id = int(user_id) if user_id.isdigit() and len(user_id) < 10 else 0
    errors: dict[str, str] = {}
    if not owner_id:
        errors["user_id"] = "Выберите пользователя, от имени которого будет работать программа"
    if not name.strip():
        errors["name"] = "Назовите токен так, чтобы было понятно, какая программа им пользуется"
    elif len(name.strip()) > 255:
        errors["name"] = "Название длиннее 255 знаков — сократите его"
    if not errors:
        try:
            token, plain = tokens.issue(
                session, owner_id, name, by=admin, now=clock(), address=client_address(request)
            )
        except Invalid as exc:
            session.rollback()
            errors["user_id"] = exc.message
        else:
            session.commit()
            owner = session.get(User, token.user_id)
            return view.render(
                "admin/tokens_created.html", headers=NO_STORE, token=token, plain=plain, owner=owner
            )
    return _render_tokens(
        request,
        view,
        session,
        user_id=None,
        show="active",
        before=None,
        errors=errors,
        form={"user_id": owner_id or None, "name": name},
        status_code=422,
    )


@router.post("/admin/tokens/{token_id}/revoke", name="admin:token_revoke")
def token_revoke(
    request: Request,
    token_id: PathId,
    session: SessionDep,
    admin: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
) -> Response:
    token = tokens.revoke(session, token_id, by=admin, now=clock(), address=client_address(request))
    session.commit()
    if view.wants_fragment:
        owner = session.get(User, token.user_id)
        return view.render(
            "admin/tokens_row.html", t=token, owner=owner, now=request.app.state.clock()
        )
    back = request.headers.get("referer", "")
    target = request.url_for("admin:tokens").path
    if back.startswith(str(request.base_url).rstrip("/") + "/admin/users/"):
        target = back.split("?")[0].removeprefix(str(request.base_url).rstrip("/"))
    return RedirectResponse(f"{target}?done=revoked", status_code=303)


# --- /admin/audit ---------------------------------------------------------------------


def _day_start(value: str, tz: ZoneInfo) -> datetime | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(day, time(), tzinfo=tz)


@router.get("/admin/audit", name="admin:audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    admin: WebAdminDep,
    view: ViewDep,
    actor_id: Annotated[str, Query(max_length=12)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    object_type: Annotated[str, Query(max_length=40)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """The audit log, newest first, filtered by person, action, object and period (days
    in the viewer's zone, both included)."""
    zone = ZoneInfo(auth_service.user_timezone(session, admin))
    errors: dict[str, str] = {}
    start = _day_start(since, zone) if since else None
    end = _day_start(until, zone) if until else None
    if since and start is None:
        errors["from"] = "Введите дату в виде 2026-03-01"
    if until and end is None:
        errors["to"] = "Введите дату в виде 2026-03-31"
    if start and end and end < start:
        errors["to"] = "Конец периода раньше начала — поменяйте даты местами"
    f = audit.AuditFilter(
        actor_id=int(actor_id) if actor_id.isdigit() and len(actor_id) < 10 else None,
        action=action.strip() or None,
        object_type=object_type.strip() or None,
        object_id=object_id.strip() or None,
        since=start,
        until=end + timedelta(days=1) if end else None,
    )
    rows, more = (
        ([], False) if errors else audit.entries(session, f, limit=PAGE_SIZE, before_id=before)
    )
    people = session.exec(select(User).order_by(col(User.login))).all()
    template = "admin/audit_list.html" if view.wants_fragment else "admin/audit.html"
    return view.render(
        template,
        status_code=422 if errors else 200,
        rows=rows,
        more=more,
        next_before=rows[-1].id if more and rows else None,
        people=people,
        object_types=sorted({*audit_text.OBJECT_NAMES_RU, *audit.object_types(session)}),
        object_names=audit_text.OBJECT_NAMES_RU,
        filters={
            "actor_id": actor_id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "from": since,
            "to": until,
        },
        errors=errors,
        action_text=audit_text.action_text,
        changes=audit_text.change_rows(audit_text.id_names(session, rows)),
        object_links=audit_text.OBJECT_LINKS,
        tz=str(zone),
        now=request.app.state.clock(),
    )


# --- the invitation link (public: the link itself is the credential) -----------------


def _invite_page(
    view: View,
    request: Request,
    settings: Settings,
    *,
    person: User | None,
    invitation: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = view.render(
        "auth/invite.html",
        status_code=status_code if person is not None else 404,
        headers=NO_STORE,
        person=person,
        invitation=invitation,
        errors=errors or {},
        csrf_token=token,
    )
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies or request.url.scheme == "https",
    )
    return response


def invitation_link(base: str, plain: str) -> str:
    return f"{base.rstrip('/')}/invite?{urlencode({'token': plain})}"


@router.get("/invite", name="auth:invite", response_class=HTMLResponse)
def invite_form(
    request: Request,
    session: SessionDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    person = users.invitation_user(session, token, clock()) if token else None
    return _invite_page(view, request, settings, person=person, invitation=token)


@router.post("/invite", name="auth:invite_accept")
def invite_accept(
    request: Request,
    session: SessionDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    repeat_password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    now = clock()
    person = users.invitation_user(session, token, now) if token else None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if person is None:
        return _invite_page(view, request, settings, person=None)
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return _invite_page(
            view,
            request,
            settings,
            person=person,
            invitation=token,
            errors={"password": "Форма устарела. Введите пароль ещё раз."},
            status_code=403,
        )
    try:
        users.accept_invitation(
            session,
            token,
            password=password,
            repeat=repeat_password,
            now=now,
            address=client_address(request),
        )
    except auth_service.FormInvalid as exc:
        session.rollback()
        return _invite_page(
            view,
            request,
            settings,
            person=person,
            invitation=token,
            errors=exc.errors,
            status_code=422,
        )
    session.commit()
    return RedirectResponse("/login?done=password", status_code=303)
