"""Sign-in and sign-out pages."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import service as auth_service
from app.auth.deps import CSRF_COOKIE, SESSION_COOKIE, SettingsDep, WebFormUserDep
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.web import ViewDep

router = APIRouter(tags=["pages"], include_in_schema=False)


def _safe_next(value: str | None) -> str:
    # Only local paths: never redirect a user to another site after sign-in.
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/inbox"


@router.get("/login", name="auth:login_form", response_class=HTMLResponse)
def login_form(request: Request, view: ViewDep, settings: SettingsDep, next: str = "") -> Response:
    # Before sign-in there is no session: a double-submit cookie protects the form.
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = view.render("auth/login.html", csrf_token=token, next=_safe_next(next), error=None)
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="lax", secure=settings.secure_cookies
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
    if not cookie_token or not secrets.compare_digest(cookie_token, csrf_token):
        return view.render(
            "auth/login.html",
            status_code=403,
            csrf_token=cookie_token or secrets.token_urlsafe(24),
            next=_safe_next(next),
            error="Форма устарела. Обновите страницу и войдите снова.",
            login=login,
        )
    result = auth_service.login(session, login, password, clock(), settings.session_hours)
    if result is None:
        return view.render(
            "auth/login.html",
            status_code=401,
            csrf_token=cookie_token,
            next=_safe_next(next),
            error="Неверный логин или пароль",
            login=login,
        )
    session.commit()
    _, plain = result
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        plain,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post("/logout", name="auth:logout")
def logout(request: Request, session: SessionDep, user: WebFormUserDep) -> Response:
    auth_service.logout(session, request.cookies.get(SESSION_COOKIE, ""))
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
