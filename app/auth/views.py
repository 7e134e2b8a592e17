"""Sign-in and sign-out, and the signed-in user's profile (name, e-mail, time zone,
password, Telegram alerts).

Every form works without JavaScript: success is a 303 back to the page with
`?done=...`, a mistake re-renders the page with 422 and an error summary.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import access_admin, admin, invite_views, login_sessions
from app.auth import profile as auth_profile
from app.auth import service as auth_service
from app.auth.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SettingsDep,
    WebFormUserDep,
    WebUserDep,
    client_address,
)
from app.auth.models import ROLE_NAMES_RU, User
from app.auth.throttle import TooManyAttempts
from app.core.clock import ClockDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.web import View, ViewDep
from app.directory.models import Institution, Territory
from app.notifications import alert_bot

router = APIRouter(tags=["pages"], include_in_schema=False)

DONE_RU = {
    "profile": "Изменения сохранены.",
    "password": "Пароль изменён. На других устройствах нужно войти заново.",
    "telegram_off": "Уведомления в Telegram отключены.",
}


def _safe_next(value: str | None) -> str:
    # Only a local path: never send a user to another site after sign-in. Browsers read
    # "/\\evil" as "//evil" and drop tabs and newlines, so those are refused too.
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/inbox"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/inbox"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/inbox"
    return value


def _secure(request: Request, settings: Settings) -> bool:
    # Secure whenever the browser came over HTTPS (uvicorn applies a trusted proxy's
    # X-Forwarded-Proto), or when the public URL or the setting says so.
    return settings.secure_cookies or request.url.scheme == "https"


@router.get("/login", name="auth:login_form", response_class=HTMLResponse)
def login_form(
    request: Request, view: ViewDep, settings: SettingsDep, next: str = "", done: str = ""
) -> Response:
    # Before sign-in there is no session: a double-submit cookie protects the form.
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    notice = "Пароль сохранён. Войдите с ним." if done == "password" else None
    response = view.render(
        "auth/login.html", csrf_token=token, next=_safe_next(next), error=None, notice=notice
    )
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request, settings)
    )
    return response


@router.post("/login", name="auth:login")
def login(
    request: Request,
    session: SessionDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    cookie_token = request.cookies.get(CSRF_COOKIE, "")

    def refuse(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
        return view.render(
            "auth/login.html",
            status_code=status,
            headers=headers,
            csrf_token=cookie_token or secrets.token_urlsafe(24),
            next=_safe_next(next),
            error=error,
            login=login,
        )

    if not cookie_token or not secrets.compare_digest(cookie_token, csrf_token):
        return refuse(403, "Форма устарела. Обновите страницу и войдите снова.")
    try:
        result = login_sessions.login(
            session,
            login,
            password,
            clock(),
            settings.session_hours,
            # Sign-ins are throttled even from no known address (one shared bucket).
            address=client_address(request) or "unknown",
        )
    except TooManyAttempts as exc:
        session.rollback()
        return refuse(429, exc.message, {"Retry-After": str(exc.retry_after)})
    # A failure is committed too: the throttle counts it in every process.
    session.commit()
    if result is None:
        return refuse(401, "Неверный логин или пароль")
    _, plain = result
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        plain,
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
        max_age=settings.session_hours * 3600,
    )
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post("/logout", name="auth:logout")
def logout(request: Request, session: SessionDep, user: WebFormUserDep) -> Response:
    login_sessions.logout(session, request.cookies.get(SESSION_COOKIE, ""))
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- the profile ----------------------------------------------------------------------


def _scope_text(session: Session, user: User) -> str:
    assert user.id is not None
    names: list[str] = []
    for institution_id in auth_service.institution_ids_of(session, user.id)[:20]:
        institution = session.get(Institution, institution_id)
        if institution is not None:
            names.append(institution.name)
    if user.institution_id is not None and (i := session.get(Institution, user.institution_id)):
        names.append(i.name)
    if user.territory_id is not None and (t := session.get(Territory, user.territory_id)):
        names.append(t.name)
    return "; ".join(names) or "Все учреждения"


def _render_profile(
    request: Request,
    view: View,
    session: Session,
    user: User,
    settings: Settings,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    now = request.app.state.clock()
    context.setdefault("errors", {})
    context.setdefault(
        "form", {"name": user.name, "email": user.email or "", "timezone": user.timezone or ""}
    )
    template = "profile/_telegram.html" if context.pop("telegram_only", False) else None
    return view.render(
        template or "profile/profile.html",
        status_code=status_code,
        me=user,
        role=ROLE_NAMES_RU.get(user.role, str(user.role)),
        scope=_scope_text(session, user),
        timezones=auth_service.TIMEZONES,
        telegram=alert_bot.status(session, user, settings, now),
        email_alerts=bool(settings.smtp_host),
        zone=auth_service.user_timezone(session, user),
        done=DONE_RU.get(request.query_params.get("done", "")),
        now=now,
        **context,
    )


def _back(request: Request, done: str, anchor: str = "") -> RedirectResponse:
    url = request.url_for("auth:profile").path
    return RedirectResponse(f"{url}?done={done}{anchor}", status_code=303)


@router.get("/profile", name="auth:profile", response_class=HTMLResponse)
def profile(
    request: Request, session: SessionDep, user: WebUserDep, view: ViewDep, settings: SettingsDep
) -> HTMLResponse:
    return _render_profile(request, view, session, user, settings)


@router.post("/profile", name="auth:profile_save")
def profile_save(
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    view: ViewDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
) -> Response:
    try:
        auth_profile.update_profile(session, user, name=name, email=email, timezone=timezone)
    except auth_service.FormInvalid as exc:
        session.rollback()
        session.refresh(user)
        form = {"name": name, "email": email, "timezone": timezone}
        return _render_profile(
            request, view, session, user, settings, status_code=422, errors=exc.errors, form=form
        )
    session.commit()
    return _back(request, "profile")


@router.post("/profile/password", name="auth:password")
def password_change(
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    view: ViewDep,
    settings: SettingsDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    repeat_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        auth_profile.change_password(
            session,
            user,
            current=current_password,
            new=new_password,
            repeat=repeat_password,
            keep_session=request.cookies.get(SESSION_COOKIE),
            address=client_address(request),
        )
    except auth_service.FormInvalid as exc:
        session.rollback()
        session.refresh(user)
        # Passwords are never sent back into the form.
        return _render_profile(
            request, view, session, user, settings, status_code=422, errors=exc.errors
        )
    session.commit()
    return _back(request, "password")


@router.get("/profile/telegram", name="auth:telegram")
def telegram_status(
    request: Request, session: SessionDep, user: WebUserDep, view: ViewDep, settings: SettingsDep
) -> Response:
    """The Telegram section alone: the page polls it while a code waits to be used."""
    if not view.wants_fragment:
        return RedirectResponse(request.url_for("auth:profile").path + "#telegram", 303)
    return _render_profile(request, view, session, user, settings, telegram_only=True)


@router.post("/profile/telegram", name="auth:telegram_link")
def telegram_link(
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    view: ViewDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    if alert_bot.configured(settings):
        alert_bot.start_linking(session, user, clock())
        session.commit()
    if view.wants_fragment:
        return _render_profile(request, view, session, user, settings, telegram_only=True)
    return RedirectResponse(request.url_for("auth:profile").path + "#telegram", 303)


@router.post("/profile/telegram/unlink", name="auth:telegram_unlink")
def telegram_unlink(
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    view: ViewDep,
    settings: SettingsDep,
) -> Response:
    alert_bot.unlink(session, user)
    session.commit()
    if view.wants_fragment:
        return _render_profile(
            request,
            view,
            session,
            user,
            settings,
            telegram_only=True,
            notice=DONE_RU["telegram_off"],
        )
    return _back(request, "telegram_off", "#telegram")


# The administration of people (/admin/users) and access (/admin/tokens, /admin/audit)
# and the invitation link: their own modules, served with these pages.
router.include_router(admin.router)
router.include_router(access_admin.router)
router.include_router(invite_views.router)
