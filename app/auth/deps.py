"""Who is calling: bearer tokens for the API, session cookies (with CSRF) for pages."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import login_sessions, tokens
from app.auth.models import Role, User
from app.core.clock import ClockDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import DomainError, NotAllowed, NotFound, Unauthorized

SESSION_COOKIE = "otklik_session"
CSRF_COOKIE = "otklik_csrf"


class LoginRequired(DomainError):
    """A page needs a signed-in user: the handler redirects to /login."""

    status_code = 303
    code = "login_required"


def login_url(request: Request) -> str:
    """/login with `next` set to where the user was going, query included, so a deep
    link to a filtered queue survives sign-in. For an htmx request (a poll, a swap)
    that is the page the browser shows (HX-Current-URL), not the fragment's URL."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request") == "true":
        current = urlsplit(request.headers.get("hx-current-url", ""))
        if current.netloc == request.url.netloc and current.path.startswith("/"):
            target = current.path + (f"?{current.query}" if current.query else "")
    return "/login?" + urlencode({"next": target})


def client_address(request: Request) -> str | None:
    """The caller's address for the audit log and the sign-in throttle; None when the
    server was not told one (the audit log then records no address rather than a
    made-up one). uvicorn has already replaced it with X-Forwarded-For's when the peer
    is a trusted proxy."""
    return request.client.host if request.client else None


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# Declares the bearer scheme in the OpenAPI document (the «Authorize» button of
# /api/docs); the header is still read below, to answer 401 in the API's error body.
_bearer = HTTPBearer(auto_error=False, description="Токен API: `otklik tokens create LOGIN`")


def get_api_user(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Нужен заголовок Authorization: Bearer <токен>", code="unauthorized")
    user = tokens.authenticate_token(session, token.strip(), clock())
    if user is None:
        raise Unauthorized("Токен неизвестен или отозван", code="invalid_token")
    # The last-used stamp is the one write a read-only call makes; it is best
    # effort, a busy database must not fail the call.
    try:
        session.commit()
    except sa.exc.OperationalError:
        session.rollback()
    request.state.user = user
    return user


ApiUserDep = Annotated[User, Depends(get_api_user)]


def require_api_admin(user: ApiUserDep) -> User:
    if user.role != Role.admin:
        raise NotAllowed("Нужна роль администратора", code="forbidden")
    return user


ApiAdminDep = Annotated[User, Depends(require_api_admin)]


async def _csrf_from_request(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    expected = getattr(request.state, "csrf_token", None)
    given = await _csrf_from_request(request)
    if not expected or not given or not secrets.compare_digest(expected, given):
        raise NotAllowed("Форма устарела. Обновите страницу и попробуйте ещё раз.", code="csrf")


def get_web_user(request: Request, session: SessionDep, clock: ClockDep) -> User:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings: Settings = request.app.state.settings
    idle = timedelta(minutes=settings.session_idle_minutes)
    found = login_sessions.session_user(session, cookie, clock(), idle) if cookie else None
    if found is None:
        raise LoginRequired("Войдите в систему")
    user, login_session = found
    if session.dirty:
        # The session's last-use stamp; best effort, like a token's: a busy database
        # must not fail the page.
        try:
            session.commit()
        except sa.exc.OperationalError:
            session.rollback()
    request.state.user = user
    request.state.csrf_token = login_session.csrf_token
    if user.timezone:
        # The zone chosen in the profile: times elsewhere then name their zone («МСК+2»).
        request.state.viewer_tz = user.timezone
    return user


WebUserDep = Annotated[User, Depends(get_web_user)]


async def get_web_form_user(request: Request, user: WebUserDep) -> User:
    await check_csrf(request)
    return user


WebFormUserDep = Annotated[User, Depends(get_web_form_user)]


def get_web_admin(user: WebUserDep) -> User:
    """An administrator's page: to anyone else it is the same 404 as a missing page,
    so the administration's addresses confirm nothing to an operator or supervisor."""
    if user.role != Role.admin:
        raise NotFound("Страница не найдена", code="not_found")
    return user


WebAdminDep = Annotated[User, Depends(get_web_admin)]


async def get_web_admin_form(request: Request, user: WebAdminDep) -> User:
    await check_csrf(request)
    return user


WebAdminFormDep = Annotated[User, Depends(get_web_admin_form)]
