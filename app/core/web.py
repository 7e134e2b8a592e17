"""Templates, their Russian formatting filters, and the View helper that picks the layout.

Filters and globals every template may use (all from `app.core.format`):

- ``{{ at | dt(tz) }}`` «1 декабря, 14:05»; ``{{ at | dt_short(tz) }}`` «вт, 1 дек., 14:05»;
  both add « (МСК+2)» when `tz` differs from the page's ``viewer_tz``; ``{{ at | date(tz) }}``;
  ``{{ at | iso }}`` for ``<time datetime>``.
- ``{{ minutes | duration }}`` «2 ч 15 мин»; ``{{ n | number }}`` «12 345».
- ``{{ plural(n, "вопрос", "вопроса", "вопросов") }}``, ``{{ count(n, ...) }}`` «5 вопросов».
- ``{{ code | platform }}`` «ВКонтакте» (a platform code is never shown raw).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.datastructures import URL, URLPath

from app.core import format as fmt

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _now(context: Context) -> datetime:
    now = context.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def _dt_filter(short: bool) -> Callable[..., str]:
    @pass_context
    def _format(context: Context, value: datetime | None, tz: str | None = None) -> str:
        return fmt.datetime_text(
            value, tz, viewer_tz=context.get("viewer_tz"), now=_now(context), short=short
        )

    return _format


@pass_context
def _date(context: Context, value: datetime | None, tz: str | None = None) -> str:
    return fmt.date_text(value, tz, now=_now(context))


def _duration(minutes: float | None, days: bool = False) -> str:
    return fmt.duration(minutes, days=days)


templates.env.filters.update(
    dt=_dt_filter(short=False),
    dt_short=_dt_filter(short=True),
    date=_date,
    iso=fmt.iso,
    duration=_duration,
    number=fmt.number,
    platform=fmt.platform_name,
    # Older names, kept for templates written before the formatting module.
    local=_dt_filter(short=False),
    minutes=_duration,
)


_PATHS_KEPT = 4096


def _path_for(router: Any, name: str, params: dict[str, Any]) -> URLPath:
    """`router.url_path_for`, remembered on the router per name and parameters."""
    cache: dict[tuple[str, tuple[tuple[str, Any], ...]], URLPath] | None = getattr(
        router, "_otklik_paths", None
    )
    if cache is None:
        cache = {}
        router._otklik_paths = cache
    key = (name, tuple(sorted(params.items())))
    path = cache.get(key)
    if path is None:
        if len(cache) >= _PATHS_KEPT:
            cache.clear()
        path = cache[key] = cast(URLPath, router.url_path_for(name, **params))
    return path


@pass_context
def _url_for(context: Context, name: str, /, **path_params: Any) -> URL:
    """Starlette's `url_for`, with the path looked up once per name and parameters: the
    lookup walks every route (a page's four static links cost more than its SQL)."""
    request: Request = context["request"]
    router = request.scope.get("router") or request.scope.get("app")
    return _path_for(router, name, path_params).make_absolute_url(base_url=request.base_url)


templates.env.globals.update(
    url_for=_url_for,
    plural=fmt.plural,
    count=fmt.count,
    platform_name=fmt.platform_name,
    zone_label=fmt.zone_label,
)


class View:
    """Renders a full page, or only the fragment an htmx request swaps in.

    A fragment only for a plain htmx request: a boosted link or form (`HX-Boosted`)
    swaps the whole body, and a history restore (`HX-History-Restore-Request`, sent
    because base.html keeps pages out of localStorage) must get the whole page.
    GET answers vary on `HX-Request`, so a browser cache never serves a bare
    fragment for a reopened tab (htmx#724).
    """

    def __init__(self, request: Request) -> None:
        self.request = request

    @property
    def is_htmx(self) -> bool:
        """Any request made by htmx (errors then go to `#flash`)."""
        return self.request.headers.get("hx-request") == "true"

    @property
    def wants_fragment(self) -> bool:
        headers = self.request.headers
        return (
            self.is_htmx
            and headers.get("hx-boosted") != "true"
            and headers.get("hx-history-restore-request") != "true"
        )

    def render(
        self,
        template: str,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("user", getattr(self.request.state, "user", None))
        context.setdefault("csrf_token", getattr(self.request.state, "csrf_token", ""))
        context.setdefault("viewer_tz", getattr(self.request.state, "viewer_tz", None))
        context["is_htmx"] = self.is_htmx
        context["fragment"] = self.wants_fragment
        response = templates.TemplateResponse(
            self.request, template, context, status_code=status_code, headers=headers
        )
        if self.request.method in ("GET", "HEAD"):
            response.headers.append("Vary", "HX-Request")
        return response


def get_view(request: Request) -> View:
    return View(request)


ViewDep = Annotated[View, Depends(get_view)]


# Sent with every response (RequestIdMiddleware adds them). Scripts only from our own
# files: no inline script, no eval (htmx's `allowEval` is off), so text that slipped
# past escaping could not run. Styles only from our own files too: no style attribute,
# no <style> element (htmx's own indicator style is off: includeIndicatorStyles), so
# injected markup cannot restyle a page to mislead (a fake button over a real one).
# Images: citizens' attachments are shown from the platforms' hosts over https.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: https:; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # Links to platform pages (a citizen's comment) do not tell them our addresses.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
