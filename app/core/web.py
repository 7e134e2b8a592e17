"""Templates and the View helper that picks the layout from HX-Request."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _local(value: datetime | None, tz: str = "Europe/Moscow", fmt: str = "%d.%m.%Y %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    total = round(value)
    hours, minutes = divmod(total, 60)
    return f"{hours} ч {minutes:02d} мин" if hours else f"{minutes} мин"


templates.env.filters["local"] = _local
templates.env.filters["minutes"] = _minutes


class View:
    """Renders a full page, or only the fragment for an htmx request."""

    def __init__(self, request: Request) -> None:
        self.request = request

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def render(
        self,
        template: str,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("user", getattr(self.request.state, "user", None))
        context.setdefault("csrf_token", getattr(self.request.state, "csrf_token", ""))
        context["is_htmx"] = self.is_htmx
        return templates.TemplateResponse(
            self.request, template, context, status_code=status_code, headers=headers
        )


def get_view(request: Request) -> View:
    return View(request)


ViewDep = Annotated[View, Depends(get_view)]
