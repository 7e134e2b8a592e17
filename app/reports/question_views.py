"""The questions behind a dashboard figure (`/dashboard/questions`): the list, read-only
for a supervisor, with its per-question exports (CSV and XLSX, streamed). The URL holds
the figure, scope and period, so the list can be shared and the back button works.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlmodel import Session

from app.auth.deps import WebUserDep
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import decode_cursor, encode_cursor
from app.core.web import ViewDep
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory
from app.questions import queries
from app.questions.queries import QuestionFilter
from app.reports import drill, periods, population, question_export
from app.reports.population import ReportFilter, check_visible
from app.reports.views import PAGE_SIZE, download_headers, int_or_none, span_text, url_with
from app.sla import display

router = APIRouter()


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
        page_id=int_or_none(query.get("page_id")),
        classification=query.get("classification") or None,
        territory_id=int_or_none(query.get("territory_id")),
        institution_tree_id=int_or_none(query.get("institution_id")),
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
        ReportFilter(
            now,
            now,
            int_or_none(query.get("territory_id")),
            int_or_none(query.get("institution_id")),
        ),
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
        session,
        user,
        int_or_none(query.get("territory_id")),
        int_or_none(query.get("institution_id")),
    )
    base = {k: v for k, v in query.items() if k != "cursor"}
    return view.render(
        "dashboard/questions.html",
        title=drill.describe(query),
        total=total,
        rows=rows,
        names=names,
        urgency=display.urgencies(session, ids, now),
        next_url=url_with("/dashboard/questions", base, cursor=encode_cursor(next_after))
        if next_after
        else None,
        first_url=url_with("/dashboard/questions", base) if query.get("cursor") else None,
        export_params=[(k, v) for k, v in base.items() if k != "mask"],
        back_url=url_with("/dashboard", _back_state(base, tz)),
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
        int_or_none(query.get("page_id")),
        int_or_none(query.get("institution_id")),
        int_or_none(query.get("territory_id")),
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
    return "получены " + span_text(start.astimezone(zone).date(), last)


def _export(
    session: Session, user: User, query: dict[str, str], now: datetime
) -> tuple[Any, str, bool]:
    """What an export of the questions behind a figure reads: their ids (a query), the
    zone its times are shown in, and whether citizens' names are masked."""
    _check_scope(session, user, query, now)
    f = question_filter(query, now)
    tz = population.timezone_of(
        session,
        user,
        int_or_none(query.get("territory_id")),
        int_or_none(query.get("institution_id")),
    )
    return queries.filtered_ids(user, f), tz, query.get("mask") == "1"


@router.get("/dashboard/questions.csv", name="reports:questions_csv")
def questions_csv(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep
) -> StreamingResponse:
    """Every question behind the figure, one row each, streamed as CSV."""
    now = clock()
    ids, tz, mask = _export(session, user, dict(request.query_params), now)
    lines = question_export.csv_stream(session, ids, tz, mask=mask)
    return StreamingResponse(
        lines, media_type="text/csv; charset=utf-8", headers=download_headers("voprosy", now, "csv")
    )


@router.get("/dashboard/questions.xlsx", name="reports:questions_xlsx")
def questions_xlsx(
    request: Request, session: SessionDep, user: WebUserDep, clock: ClockDep
) -> StreamingResponse:
    """Every question behind the figure as an Excel workbook (written row by row)."""
    now = clock()
    query = dict(request.query_params)
    ids, tz, mask = _export(session, user, query, now)
    body = question_export.xlsx_stream(session, ids, tz, drill.describe(query), mask=mask)
    return StreamingResponse(
        body, media_type=question_export.XLSX, headers=download_headers("voprosy", now, "xlsx")
    )
