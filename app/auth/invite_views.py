"""The invitation link a new user opens to choose a password (`/invite?token=…`: in the
query, not the path, so the request log, which records paths, never holds it). Public:
the link itself is the credential, valid once and for a limited time.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import invitations
from app.auth import service as auth_service
from app.auth.admin import NO_STORE
from app.auth.deps import (
    CSRF_COOKIE,
    SettingsDep,
    client_address,
)
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.web import View, ViewDep

router = APIRouter(include_in_schema=False)


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


@router.get("/invite", name="auth:invite", response_class=HTMLResponse)
def invite_form(
    request: Request,
    session: SessionDep,
    view: ViewDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    person = invitations.invitation_user(session, token, clock()) if token else None
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
    person = invitations.invitation_user(session, token, now) if token else None
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
        invitations.accept_invitation(
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
