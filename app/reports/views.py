"""The supervisor's pages: the dashboard (`/dashboard`) and the weekly report; the
questions behind each of its figures (`/dashboard/questions`) with their exports are
`app.reports.question_views`; the JSON API and aggregate exports `app.reports.api`,
included here.

The URL holds the whole state (scope, period, sector), so a link can be shared and
the back button works; every page works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.auth.deps import WebUserDep
from app.core import format as fmt
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.web import ViewDep
from app.directory.models import SECTOR_NAMES_RU, Sector
from app.reports import api, chart, dashboard, drill, periods, population, question_export, weekly

router = APIRouter()
router.include_router(api.router)

PAGE_SIZE = 50
STATE_KEYS = ("territory_id", "institution_id", "sector", "period", "from", "to", "silent_days")
SILENT_CHOICES = (3, 7, 14, 30)


def int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _state(query: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's state as the URL holds it; unknown values are dropped."""
    state = {k: query[k].strip() for k in STATE_KEYS if query.get(k, "").strip()}
    for key in ("territory_id", "institution_id"):
        if key in state and int_or_none(state[key]) is None:
            del state[key]
    if state.get("silent_days") not in {str(n) for n in SILENT_CHOICES}:
        state.pop("silent_days", None)
    if state.get("sector") not in Sector.__members__:
        state.pop("sector", None)
    if state.get("period") not in periods.PERIODS:
        state.pop("period", None)
    if state.get("period") != "custom":
        state.pop("from", None)
        state.pop("to", None)
    return state


def url_with(path: str, state: Mapping[str, Any], **changes: Any) -> str:
    merged = {**state, **changes}
    clean = {k: str(v) for k, v in merged.items() if v is not None and v != ""}
    return path + ("?" + urlencode(clean) if clean else "")


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{fmt.number(round(rate * 100, 1))}{fmt.NBSP}%"


def _change(now: float | None, before: float | None) -> str:
    """A rate's change in percentage points: «+3 п. п.», «−2,5 п. п.», «без изменений»."""
    if now is None or before is None:
        return ""
    diff = round((now - before) * 100, 1)
    if diff == 0:
        return "без изменений"
    sign = "+" if diff > 0 else fmt.MINUS
    return f"{sign}{fmt.number(abs(diff))}{fmt.NBSP}п.{fmt.NBSP}п."


@router.get("/dashboard", response_class=HTMLResponse, name="reports:dashboard")
def dashboard_page(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep, view: ViewDep
) -> HTMLResponse:
    """The dashboard of the scope and period in the URL; 404 outside the caller's scope."""
    now = clock()
    state = _state(request.query_params)
    territory_id, institution_id = (
        int_or_none(state.get("territory_id")),
        int_or_none(state.get("institution_id")),
    )
    tz = population.timezone_of(session, user, territory_id, institution_id)
    errors: dict[str, str] = {}
    try:
        span = periods.resolve(state.get("period"), now, tz, state.get("from"), state.get("to"))
    except Invalid as exc:
        errors["from"] = exc.message
        state = {k: v for k, v in state.items() if k not in ("period", "from", "to")}
        span = periods.resolve(None, now, tz)
    d = dashboard.dashboard(
        session,
        user,
        span,
        now=now,
        territory_id=territory_id,
        institution_id=institution_id,
        sector=state.get("sector"),
        silent_days=int(state.get("silent_days") or dashboard.SILENT_DAYS),
    )

    def figure(name: str, **extra: Any) -> str:
        scope: dict[str, Any] = {
            "territory_id": territory_id,
            "institution_id": institution_id,
            "sector": state.get("sector"),
        }
        scope.update(extra)
        found = drill.params(name, start=span.start, end=span.end, now=now, **scope)
        if span.key != periods.DEFAULT_PERIOD and name in drill.PERIOD_FIGURES:
            found["period"] = span.key
        return url_with("/dashboard/questions", found)

    def drill_down(key: str) -> str:
        base = {k: v for k, v in state.items() if k not in ("territory_id", "institution_id")}
        if d.ranking_by == "territory":
            return url_with("/dashboard", base, territory_id=key)
        if d.ranking_by == "institution":
            return url_with("/dashboard", base, institution_id=key)
        return figure("questions", page_id=int(key))

    short = [_tick(r.key, d.trend_by) for r in d.trend]
    return view.render(
        "dashboard/dashboard.html",
        d=d,
        state=state,
        span=span,
        now=now,
        tz=tz,
        errors=errors,
        presets=[
            (k, t, url_with("/dashboard", state, period=k, **{"from": None, "to": None}))
            for k, t in periods.PERIODS.items()
            if k != "custom"
        ],
        sectors=[(s.value, SECTOR_NAMES_RU[s]) for s in Sector],
        silent_choices=SILENT_CHOICES,
        charts=[
            chart.trend_chart(d.trend, short),
            chart.trend_chart(d.trend, short, key="narrow", **chart.NARROW),
        ],
        trend_labels=[_row_label(r.key, d.trend_by) for r in d.trend],
        series=chart.SERIES,
        figure=figure,
        drill_down=drill_down,
        url=lambda **c: url_with("/dashboard", state, **c),
        percent=_percent,
        change=_change,
        period_label=span_text(span.first_day, span.last_day),
        exports={
            "questions_csv": figure("questions").replace(
                "/dashboard/questions", "/dashboard/questions.csv", 1
            ),
            "questions_xlsx": figure("questions").replace(
                "/dashboard/questions", "/dashboard/questions.xlsx", 1
            ),
            "weekly": url_with(
                "/dashboard/weekly.xlsx",
                {
                    k: v
                    for k, v in state.items()
                    if k in ("territory_id", "institution_id", "sector")
                },
            ),
        },
    )


_WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")


def _tick(key: str, by: str) -> str:
    if by == "week":
        monday = datetime.strptime(key + "-1", "%G-W%V-%u")
        return f"{monday.day}.{monday.month:02d}"
    day = datetime.fromisoformat(key)
    return f"{day.day}.{day.month:02d}"


def _row_label(key: str, by: str) -> str:
    """A trend table's row: «пн 16.11» for a day, «16.11–22.11» for a week."""
    if by == "week":
        monday = datetime.strptime(key + "-1", "%G-W%V-%u")
        sunday = monday + timedelta(days=6)
        return f"{monday:%d.%m}–{sunday:%d.%m}"
    day = datetime.fromisoformat(key)
    return f"{_WEEKDAYS[day.weekday()]}{fmt.NBSP}{day:%d.%m}"


def span_text(first: Any, last: Any) -> str:
    if first == last:
        return f"{first:%d.%m.%Y}"
    return f"{first:%d.%m.%Y}–{last:%d.%m.%Y}"


def download_headers(name: str, now: datetime, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}-{now:%Y%m%d-%H%M}.{ext}"'}


@router.get("/dashboard/weekly.xlsx", name="reports:weekly_xlsx")
def weekly_xlsx(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep
) -> Response:
    """Last week's report of the scope: the dashboard's figures, the ranking, the breaches."""
    now = clock()
    state = _state(request.query_params)
    body = weekly.workbook(
        session,
        user,
        now=now,
        territory_id=int_or_none(state.get("territory_id")),
        institution_id=int_or_none(state.get("institution_id")),
        sector=state.get("sector"),
    )
    return Response(
        body, media_type=question_export.XLSX, headers=download_headers("nedelya", now, "xlsx")
    )
