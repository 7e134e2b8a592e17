"""The supervisor's pages: the dashboard (`/dashboard`), the questions behind each of
its figures (`/dashboard/questions`) with their exports, and the weekly report; the
JSON API and aggregate exports are `app.reports.api`, included here.

The URL holds the whole state (scope, period, sector), so a link can be shared and
the back button works; every page works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlmodel import Session

from app.auth.deps import WebUserDep
from app.auth.models import User
from app.core import format as fmt
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import decode_cursor, encode_cursor
from app.core.web import ViewDep
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory
from app.questions import queries
from app.questions.queries import QuestionFilter
from app.reports import api, chart, dashboard, drill, periods, population, question_export, weekly
from app.reports.population import ReportFilter, check_visible
from app.sla import display

router = APIRouter()
router.include_router(api.router)

PAGE_SIZE = 50
STATE_KEYS = ("territory_id", "institution_id", "sector", "period", "from", "to", "silent_days")
SILENT_CHOICES = (3, 7, 14, 30)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _state(query: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's state as the URL holds it; unknown values are dropped."""
    state = {k: query[k].strip() for k in STATE_KEYS if query.get(k, "").strip()}
    for key in ("territory_id", "institution_id"):
        if key in state and _int(state[key]) is None:
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


def _url(path: str, state: Mapping[str, Any], **changes: Any) -> str:
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
        _int(state.get("territory_id")),
        _int(state.get("institution_id")),
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
        return _url("/dashboard/questions", found)

    def drill_down(key: str) -> str:
        base = {k: v for k, v in state.items() if k not in ("territory_id", "institution_id")}
        if d.ranking_by == "territory":
            return _url("/dashboard", base, territory_id=key)
        if d.ranking_by == "institution":
            return _url("/dashboard", base, institution_id=key)
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
            (k, t, _url("/dashboard", state, period=k, **{"from": None, "to": None}))
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
        url=lambda **c: _url("/dashboard", state, **c),
        percent=_percent,
        change=_change,
        period_label=_span_text(span.first_day, span.last_day),
        exports={
            "questions_csv": figure("questions").replace(
                "/dashboard/questions", "/dashboard/questions.csv", 1
            ),
            "questions_xlsx": figure("questions").replace(
                "/dashboard/questions", "/dashboard/questions.xlsx", 1
            ),
            "weekly": _url(
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


def _span_text(first: Any, last: Any) -> str:
    if first == last:
        return f"{first:%d.%m.%Y}"
    return f"{first:%d.%m.%Y}–{last:%d.%m.%Y}"


# --- the questions behind a figure ------------------------------------------------------


def question_filter(query: Mapping[str, str], now: datetime) -> QuestionFilter:
    """The list filter a figure's URL holds (`drill.params` wrote it)."""

    def instant(name: str) -> datetime | None:
        value = query.get(name)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise Invalid(f"Неверная дата: {value}", code="invalid_date") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)

    figure = query.get("figure", "questions")
    f = QuestionFilter(
        page_id=_int(query.get("page_id")),
        classification=query.get("classification") or None,
        territory_id=_int(query.get("territory_id")),
        institution_tree_id=_int(query.get("institution_id")),
        sector=query.get("sector") or None,
        created_from=instant("from"),
        created_to=instant("to"),
        source=query.get("source") or None,
        first_response=query.get("first_response") or None,
        breached=True if query.get("breached") == "1" else None,
    )
    if query.get("status"):
        f.status = [query["status"]]
    if figure in drill.NOW_FIGURES:
        f.status = ["open"]
        f.needs_answer = True
        if figure == "overdue_now":
            f.due_by = now
        elif figure == "warning_now":
            f.warning_at = now
        elif figure.startswith("age_"):
            f.created_from, f.created_to = drill.age_range(figure.removeprefix("age_"), now)
    return f


def _check_scope(session: Session, user: User, query: Mapping[str, str], now: datetime) -> None:
    """A neighbour's territory or institution is not found, as on the dashboard."""
    check_visible(
        session,
        user,
        ReportFilter(now, now, _int(query.get("territory_id")), _int(query.get("institution_id"))),
    )


@router.get("/dashboard/questions", response_class=HTMLResponse, name="reports:questions")
def questions_page(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep, view: ViewDep
) -> HTMLResponse:
    """The questions behind one figure of the dashboard, most urgent first, paged."""
    now = clock()
    query = dict(request.query_params)
    _check_scope(session, user, query, now)
    f = question_filter(query, now)
    total = queries.new_since(session, user, f, 0)
    rows, next_after = queries.list_questions(
        session, user, f, after=decode_cursor(query.get("cursor")), limit=PAGE_SIZE
    )
    ids = [q.id for q in rows if q.id is not None]
    names = question_export.names(session, rows)
    tz = population.timezone_of(
        session, user, _int(query.get("territory_id")), _int(query.get("institution_id"))
    )
    base = {k: v for k, v in query.items() if k != "cursor"}
    return view.render(
        "dashboard/questions.html",
        title=drill.describe(query),
        total=total,
        rows=rows,
        names=names,
        urgency=display.urgencies(session, ids, now),
        next_url=_url("/dashboard/questions", base, cursor=encode_cursor(next_after))
        if next_after
        else None,
        first_url=_url("/dashboard/questions", base) if query.get("cursor") else None,
        export_params=[(k, v) for k, v in base.items() if k != "mask"],
        back_url=_url("/dashboard", _back_state(base, tz)),
        scope_text=_scope_text(session, query),
        period_text=_list_period(query, tz),
        large=total > question_export.LARGE,
        now=now,
    )


def _back_state(query: Mapping[str, str], tz: str) -> dict[str, str]:
    """The dashboard a list came from: its scope and period (a custom one as dates)."""
    state = {k: query[k] for k in ("territory_id", "institution_id", "sector") if query.get(k)}
    key = query.get("period")
    if key in periods.PERIODS and key != "custom":
        state["period"] = key
    elif key == "custom" and query.get("from") and query.get("to"):
        try:
            start = datetime.fromisoformat(query["from"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(query["to"].replace("Z", "+00:00"))
        except ValueError:
            return state
        zone = ZoneInfo(tz)
        state["period"] = "custom"
        state["from"] = start.astimezone(zone).date().isoformat()
        state["to"] = (end.astimezone(zone) - timedelta(microseconds=1)).date().isoformat()
    return state


def _scope_text(session: Session, query: Mapping[str, str]) -> str:
    """Where the listed questions are: «Страница … · Учреждение …», a territory, a sector."""
    parts: list[str] = []
    page_id, inst_id, terr_id = (
        _int(query.get("page_id")),
        _int(query.get("institution_id")),
        _int(query.get("territory_id")),
    )
    if page_id is not None and (page := session.get(Page, page_id)) is not None:
        parts.append(f"страница «{page.name}»")
    if inst_id is not None and (inst := session.get(Institution, inst_id)) is not None:
        parts.append(inst.name)
    elif terr_id is not None and (terr := session.get(Territory, terr_id)) is not None:
        parts.append(terr.name)
    sector = query.get("sector") or ""
    if sector in Sector.__members__:
        parts.append(f"отрасль «{SECTOR_NAMES_RU[Sector(sector)]}»")
    classification = query.get("classification")
    if classification:
        parts.append(population.CLASSIFICATION_NAMES_RU.get(classification, classification))
    return " · ".join(parts)


def _list_period(query: Mapping[str, str], tz: str) -> str:
    """«получены 07.11.2026–06.12.2026» for a period's figure; empty for figures of now."""
    try:
        start = datetime.fromisoformat(query.get("from", "").replace("Z", "+00:00"))
        end = datetime.fromisoformat(query.get("to", "").replace("Z", "+00:00"))
    except ValueError:
        return ""
    zone = ZoneInfo(tz)
    last = (end.astimezone(zone) - timedelta(microseconds=1)).date()
    return "получены " + _span_text(start.astimezone(zone).date(), last)


def _download(name: str, now: datetime, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}-{now:%Y%m%d-%H%M}.{ext}"'}


@router.get("/dashboard/questions.csv", name="reports:questions_csv")
def questions_csv(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep
) -> StreamingResponse:
    """Every question behind the figure, one row each, streamed as CSV."""
    now = clock()
    query = dict(request.query_params)
    _check_scope(session, user, query, now)
    f = question_filter(query, now)
    tz = population.timezone_of(
        session, user, _int(query.get("territory_id")), _int(query.get("institution_id"))
    )
    lines = question_export.csv_stream(
        session, queries.filtered_ids(user, f), tz, mask=query.get("mask") == "1"
    )
    return StreamingResponse(
        lines, media_type="text/csv; charset=utf-8", headers=_download("voprosy", now, "csv")
    )


@router.get("/dashboard/questions.xlsx", name="reports:questions_xlsx")
def questions_xlsx(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep
) -> StreamingResponse:
    """Every question behind the figure as an Excel workbook (written row by row)."""
    now = clock()
    query = dict(request.query_params)
    _check_scope(session, user, query, now)
    f = question_filter(query, now)
    tz = population.timezone_of(
        session, user, _int(query.get("territory_id")), _int(query.get("institution_id"))
    )
    body = question_export.xlsx_stream(
        session,
        queries.filtered_ids(user, f),
        tz,
        drill.describe(query),
        mask=query.get("mask") == "1",
    )
    return StreamingResponse(
        body, media_type=question_export.XLSX, headers=_download("voprosy", now, "xlsx")
    )


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
        territory_id=_int(state.get("territory_id")),
        institution_id=_int(state.get("institution_id")),
        sector=state.get("sector"),
    )
    return Response(
        body, media_type=question_export.XLSX, headers=_download("nedelya", now, "xlsx")
    )
