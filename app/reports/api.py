"""JSON API and spreadsheet exports of the reports; every figure comes from
`app.reports.figures`, `app.reports.backlog` or `app.reports.dashboard`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from sqlmodel import Session

from app.auth.deps import ApiUserDep
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import ERROR_RESPONSES, Listing
from app.reports import backlog, dashboard, exports, figures, periods, population
from app.reports.backlog import BacklogRow
from app.reports.dashboard import Dashboard
from app.reports.figures import SlaRow
from app.reports.population import ReportFilter

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=ERROR_RESPONSES)

DEFAULT_DAYS = 30

FromQuery = Annotated[
    str | None,
    Query(
        alias="from", description="date (local, inclusive) or ISO 8601 instant; default 30 days ago"
    ),
]
ToQuery = Annotated[
    str | None,
    Query(description="date (local, inclusive) or ISO 8601 instant (exclusive); default now"),
]
GroupQuery = Annotated[
    str, Query(description="institution, page, sector, territory, classification, day, week, total")
]
SectorQuery = Annotated[
    str | None, Query(description="every institution of this sector within the territory")
]


def instant(value: str, tz: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=ZoneInfo(tz))
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"Неверная дата: {value}", code="invalid_date") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed


def report_filter(
    session: Session,
    user: User,
    now: datetime,
    start: str | None,
    end: str | None,
    territory_id: int | None,
    institution_id: int | None,
    group_by: str,
    sector: str | None = None,
) -> tuple[ReportFilter, str]:
    """The filter of a report request and the zone its dates are in."""
    tz = population.timezone_of(session, user, territory_id, institution_id)
    to = instant(end, tz, end=True) if end else now
    since = instant(start, tz, end=False) if start else to - timedelta(days=DEFAULT_DAYS)
    return ReportFilter(since, to, territory_id, institution_id, group_by, sector), tz


@router.get("/reports/sla", response_model=Listing[SlaRow], name="api:report_sla")
def report_sla(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    start: FromQuery = None,
    to: ToQuery = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: SectorQuery = None,
    group_by: GroupQuery = "institution",
    compare: Annotated[
        bool, Query(description="add each group's figures of the previous period (`previous`)")
    ] = False,
) -> Listing[SlaRow]:
    """SLA figures of the questions created in the period, per group, within the caller's
    scope. `on_time_rate` and `dismissal_share` are fractions 0..1; minutes are working
    minutes of the policy's calendar or wall-clock minutes; dismissals are counted and
    split by reason; `backlog_by_age` splits the open ones by age in days. Territory
    groups are the children of `territory_id`, else of the caller's own territory."""
    now = clock()
    f, _ = report_filter(
        session, user, now, start, to, territory_id, institution_id, group_by, sector
    )
    return Listing(items=figures.sla_report(session, user, f, now=now, compare=compare))


def _filename(name: str, now: datetime, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}-{now:%Y%m%d}.{ext}"'}


@router.get("/reports/sla.csv", name="api:report_sla_csv", response_class=Response)
def report_sla_csv(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    start: FromQuery = None,
    to: ToQuery = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: SectorQuery = None,
    group_by: GroupQuery = "institution",
) -> Response:
    """The same rows as CSV for Excel in a Russian locale: Russian headers, `;` between
    fields, decimal commas, rates in percent, UTF-8 with a BOM."""
    now = clock()
    f, _ = report_filter(
        session, user, now, start, to, territory_id, institution_id, group_by, sector
    )
    rows = figures.sla_report(session, user, f, now=now)
    return Response(
        exports.sla_csv(rows),
        media_type=exports.CSV,
        headers=_filename(f"sla-{group_by}", now, "csv"),
    )


@router.get("/reports/sla.xlsx", name="api:report_sla_xlsx", response_class=Response)
def report_sla_xlsx(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    start: FromQuery = None,
    to: ToQuery = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: SectorQuery = None,
    group_by: GroupQuery = "institution",
) -> Response:
    """The same rows as an Excel workbook: Russian headers, the period in the
    territory's zone, numbers as numbers."""
    now = clock()
    f, tz = report_filter(
        session, user, now, start, to, territory_id, institution_id, group_by, sector
    )
    rows = figures.sla_report(session, user, f, now=now)
    body = exports.sla_xlsx(rows, "Сроки ответов", periods.period_text(f.start, f.end, tz))
    return Response(
        body, media_type=exports.XLSX, headers=_filename(f"sla-{group_by}", now, "xlsx")
    )


@router.get("/reports/backlog", response_model=Listing[BacklogRow], name="api:report_backlog")
def report_backlog(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: SectorQuery = None,
    group_by: GroupQuery = "institution",
) -> Listing[BacklogRow]:
    """Open questions now, per group: how many, how many overdue or near the deadline,
    by age."""
    rows = backlog.backlog(
        session,
        user,
        now=clock(),
        territory_id=territory_id,
        institution_id=institution_id,
        group_by=group_by,
        sector=sector,
    )
    return Listing(items=rows)


@router.get("/reports/dashboard", response_model=Dashboard, name="api:report_dashboard")
def report_dashboard(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    period: Annotated[
        str | None, Query(description="week, last_week, 30d, month, quarter, year, custom")
    ] = None,
    start: Annotated[
        str | None, Query(alias="from", description="custom: first local date")
    ] = None,
    to: Annotated[str | None, Query(description="custom: last local date (inclusive)")] = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: SectorQuery = None,
    silent_days: Annotated[int, Query(ge=1, le=365)] = dashboard.SILENT_DAYS,
) -> Dashboard:
    """The dashboard's figures: headline with the previous period, the open backlog now,
    the trend, breakdowns by sector and classification, the ranking of children with
    their change, and the pages silent for `silent_days` days."""
    now = clock()
    tz = population.timezone_of(session, user, territory_id, institution_id)
    span = periods.resolve(period, now, tz, start, to)
    return dashboard.dashboard(
        session,
        user,
        span,
        now=now,
        territory_id=territory_id,
        institution_id=institution_id,
        sector=sector,
        silent_days=silent_days,
    )
