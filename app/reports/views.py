"""JSON API and exports of SLA reports; every figure comes from `app.reports.figures`
or `app.reports.backlog`."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from openpyxl import Workbook
from sqlmodel import Session

from app.auth.deps import ApiUserDep
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import ERROR_RESPONSES, Listing
from app.directory.models import Institution, Territory
from app.questions.models import DismissReason
from app.reports import backlog, figures, population
from app.reports.backlog import BacklogRow
from app.reports.figures import SlaRow
from app.reports.population import ReportFilter
from app.routing.service import DISMISS_REASONS_RU

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=ERROR_RESPONSES)

DEFAULT_DAYS = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# (field, Russian header) of the export columns; dismissals by reason follow.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "Ключ"),
    ("name", "Группа"),
    ("questions", "Вопросов"),
    ("answered", "С ответом"),
    ("on_time", "Ответ в срок"),
    ("breached", "С нарушением срока"),
    ("open", "Открыто"),
    ("dismissed", "Без ответа (отклонено)"),
    ("on_time_rate", "Доля в срок"),
    ("median_first_response_working_minutes", "Медиана первого ответа, раб. мин"),
    ("p90_first_response_working_minutes", "90-й процентиль, раб. мин"),
    ("median_first_response_wall_minutes", "Медиана первого ответа, мин"),
    ("p90_first_response_wall_minutes", "90-й процентиль, мин"),
    ("transferred_out", "Передано в другие учреждения"),
    ("wrong_queue_wall_minutes", "Время в чужой очереди, мин"),
    ("wrong_queue_working_minutes", "Время в чужой очереди, раб. мин"),
)

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
GroupQuery = Annotated[str, Query(description="institution, page, sector, territory, day, week")]


def _timezone(session: Session, territory_id: int | None, institution_id: int | None) -> str:
    if institution_id is not None and territory_id is None:
        institution = session.get(Institution, institution_id)
        territory_id = institution.territory_id if institution else None
    territory = session.get(Territory, territory_id) if territory_id is not None else None
    return territory.timezone if territory else population.DEFAULT_TIMEZONE


def _instant(value: str, tz: str, *, end: bool) -> datetime:
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


def _filter(
    session: Session,
    now: datetime,
    start: str | None,
    end: str | None,
    territory_id: int | None,
    institution_id: int | None,
    group_by: str,
) -> ReportFilter:
    tz = _timezone(session, territory_id, institution_id)
    to = _instant(end, tz, end=True) if end else now
    since = _instant(start, tz, end=False) if start else to - timedelta(days=DEFAULT_DAYS)
    return ReportFilter(since, to, territory_id, institution_id, group_by)


def _rows(
    session: Session,
    user: User,
    now: datetime,
    start: str | None,
    end: str | None,
    territory_id: int | None,
    institution_id: int | None,
    group_by: str,
) -> list[SlaRow]:
    f = _filter(session, now, start, end, territory_id, institution_id, group_by)
    return figures.sla_report(session, user, f)


@router.get("/reports/sla", response_model=Listing[SlaRow], name="api:report_sla")
def report_sla(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    start: FromQuery = None,
    to: ToQuery = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    group_by: GroupQuery = "institution",
) -> Listing[SlaRow]:
    """SLA figures of the questions created in the period, per group, within the caller's
    scope. `on_time_rate` is a fraction 0..1; minutes are working minutes of the policy's
    calendar or wall-clock minutes; dismissals are counted and split by reason."""
    rows = _rows(session, user, clock(), start, to, territory_id, institution_id, group_by)
    return Listing(items=rows)


def _table(rows: list[SlaRow]) -> tuple[list[str], list[str], list[list[object]]]:
    reasons = list(DismissReason)
    fields = [f for f, _ in COLUMNS] + [f"dismissed_{r}" for r in reasons]
    headers = [h for _, h in COLUMNS] + [
        f"Без ответа: {DISMISS_REASONS_RU.get(r, r).lower()}" for r in reasons
    ]
    data = [
        [getattr(row, f) for f, _ in COLUMNS] + [row.dismissed_by_reason.get(r, 0) for r in reasons]
        for row in rows
    ]
    return fields, headers, data


def _filename(group_by: str, now: datetime, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="sla-{group_by}-{now:%Y%m%d}.{ext}"'}


@router.get("/reports/sla.csv", name="api:report_sla_csv", response_class=Response)
def report_sla_csv(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    start: FromQuery = None,
    to: ToQuery = None,
    territory_id: int | None = None,
    institution_id: int | None = None,
    group_by: GroupQuery = "institution",
) -> Response:
    """The same rows as CSV (UTF-8, comma-separated, a header of field names)."""
    now = clock()
    rows = _rows(session, user, now, start, to, territory_id, institution_id, group_by)
    fields, _, data = _table(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows(["" if v is None else v for v in line] for line in data)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers=_filename(group_by, now, "csv"),
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
    group_by: GroupQuery = "institution",
) -> Response:
    """The same rows as an Excel workbook with Russian headers."""
    now = clock()
    f = _filter(session, now, start, to, territory_id, institution_id, group_by)
    rows = figures.sla_report(session, user, f)
    _, headers, data = _table(rows)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "SLA"
    sheet.append([f"Период: {f.start:%d.%m.%Y %H:%M} – {f.end:%d.%m.%Y %H:%M} (UTC{f.start:%z})"])
    sheet.append(headers)
    for line in data:
        sheet.append(line)
    sheet.freeze_panes = "C3"
    buffer = io.BytesIO()
    book.save(buffer)
    return Response(buffer.getvalue(), media_type=XLSX, headers=_filename(group_by, now, "xlsx"))


@router.get("/reports/backlog", response_model=Listing[BacklogRow], name="api:report_backlog")
def report_backlog(
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    territory_id: int | None = None,
    institution_id: int | None = None,
    group_by: GroupQuery = "institution",
) -> Listing[BacklogRow]:
    """Open questions now, per group: how many, how many overdue, by age."""
    rows = backlog.backlog(
        session,
        user,
        now=clock(),
        territory_id=territory_id,
        institution_id=institution_id,
        group_by=group_by,
    )
    return Listing(items=rows)
