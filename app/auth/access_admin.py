"""Administration of access: API tokens (`/admin/tokens`: issue, list, revoke) and the
audit log (`/admin/audit`). Tokens are issued and revoked through `app.auth.tokens`, the
functions the JSON API calls, and audited there; a token's secret is shown once, in the
answer to the POST that made it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import audit, audit_text, tokens
from app.auth import service as auth_service
from app.auth.admin import DONE_RU, NO_STORE, PAGE_SIZE
from app.auth.deps import (
    WebAdminDep,
    WebAdminFormDep,
    client_address,
)
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import PathId
from app.core.web import View, ViewDep

router = APIRouter(include_in_schema=False)


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
