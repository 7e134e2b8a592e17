"""The administration's front door (`/admin`): every section an administrator works in,
grouped the way the job is done, each with what it is for. The sections live in their
rooms (directory, sla, routing, answering, outbox, processing, auth); their list is
`templates/admin/_sections.html`, read by this page and by the layout they share,
`templates/admin/_layout.html`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.auth.deps import WebAdminDep
from app.core.web import ViewDep

router = APIRouter()


@router.get("/admin", response_class=HTMLResponse, name="admin:home")
def admin_home(user: WebAdminDep, view: ViewDep) -> HTMLResponse:
    """The administration's sections."""
    return view.render("admin/index.html")
