"""The notifications list and the bell in the top bar.

`/notifications` shows the user's alerts, unread first; each opens its question (and
is marked read on the way). The bell (`notifications/_bell.html`, in every page's
top bar) is a plain link without JavaScript; htmx loads its unread count and
refreshes it every 60 s from `/notifications/bell`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import service as auth_service
from app.auth.deps import WebFormUserDep, WebUserDep
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.web import ViewDep
from app.notifications import service

router = APIRouter(include_in_schema=False)

DONE_RU = {"read": "Отмечено как прочитанное.", "all": "Все уведомления прочитаны."}


@router.get("/notifications", name="notifications:index", response_class=HTMLResponse)
def index(
    request: Request,
    session: SessionDep,
    user: WebUserDep,
    view: ViewDep,
    clock: ClockDep,
    older: int | None = None,
) -> HTMLResponse:
    listing = service.listing(session, user, older_than=older)
    return view.render(
        "notifications/index.html",
        listing=listing,
        kinds=service.KIND_RU,
        text_of=service.display_text,
        zone=auth_service.user_timezone(session, user),
        unread=listing.unread_total,
        bell_loaded=True,
        done=DONE_RU.get(request.query_params.get("done", "")),
        now=clock(),
    )


@router.get("/notifications/bell", name="notifications:bell", response_class=HTMLResponse)
def bell(request: Request, session: SessionDep, user: WebUserDep, view: ViewDep) -> Response:
    if not view.is_htmx:
        return RedirectResponse(request.url_for("notifications:index").path, status_code=303)
    return view.render(
        "notifications/_bell.html", unread=service.unread_count(session, user), bell_loaded=True
    )


@router.get("/notifications/{notification_id}/open", name="notifications:open")
def open_one(
    notification_id: int,
    request: Request,
    session: SessionDep,
    user: WebUserDep,
    clock: ClockDep,
) -> RedirectResponse:
    """Opening an alert reads it: marks it read and goes to its question."""
    item = service.mark_read(session, user, notification_id, clock())
    session.commit()
    if item.question_id is None:
        return RedirectResponse(request.url_for("notifications:index").path, status_code=303)
    target = request.url_for("questions:detail", question_id=item.question_id).path
    return RedirectResponse(target, status_code=303)


@router.post("/notifications/{notification_id}/read", name="notifications:read")
def read_one(
    notification_id: int,
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    clock: ClockDep,
) -> RedirectResponse:
    service.mark_read(session, user, notification_id, clock())
    session.commit()
    url = request.url_for("notifications:index").path
    return RedirectResponse(f"{url}?done=read", status_code=303)


@router.post("/notifications/read-all", name="notifications:read_all")
def read_all(
    request: Request, session: SessionDep, user: WebFormUserDep, clock: ClockDep
) -> RedirectResponse:
    service.mark_all_read(session, user, clock())
    session.commit()
    url = request.url_for("notifications:index").path
    return RedirectResponse(f"{url}?done=all", status_code=303)
