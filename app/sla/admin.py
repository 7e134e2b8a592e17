"""SLA policies and business calendars in the browser.

Policies: the versions by attachment (everywhere, territory, sector, institution),
which one is in force for a chosen institution and moment (the API's `effective`),
a new version from a date, and a preview of the deadlines of a sample question
received at a chosen moment, day by day (weekends, holidays, short days), computed by
the SLA module's own policy resolution and calendar arithmetic.
Calendars: weekly hours, extra days off and working days, the production-calendar
years known, with a warning when next year's is missing. Changes go through
`app.sla.policies` (as the JSON API's) and are written to the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import holidays
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from app.auth import audit
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError
from app.core.web import View, ViewDep
from app.directory.models import SECTOR_NAMES_RU, Institution, Territory
from app.sla import calendar_admin, norms, policies
from app.sla.models import SlaPolicy
from app.sla.production_calendar import PRODUCTION_YEARS

router = APIRouter(include_in_schema=False)

POLICY_FIELDS = (
    "name",
    "territory_id",
    "institution_id",
    "sector",
    "first_response_minutes",
    "urgent_first_response_minutes",
    "next_response_minutes",
    "final_answer_minutes",
    "working_time",
    "calendar_id",
    "warn_ratio",
    "effective_from",
)
PREVIEW_DAYS_MAX = 31


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


# --- policies ----------------------------------------------------------------------


def _scope_name(
    policy: SlaPolicy, territories: dict[int, Territory], institutions: dict[int, Institution]
) -> str:
    if policy.institution_id is not None:
        institution = institutions.get(policy.institution_id)
        return f"Учреждение: {institution.name if institution else policy.institution_id}"
    parts = []
    if policy.sector:
        parts.append(f"Отрасль: {SECTOR_NAMES_RU.get(policy.sector, policy.sector)}")  # type: ignore[call-overload]
    if policy.territory_id is not None:
        territory = territories.get(policy.territory_id)
        parts.append(f"Территория: {territory.full_name if territory else policy.territory_id}")
    return ", ".join(parts) or "Везде"


def _hours_text(minutes: int | None, working: bool) -> str:
    if minutes is None:
        return "не считается"
    hours, rest = divmod(minutes, 60)
    text = f"{hours}\u00a0ч" if hours else ""
    if rest:
        text += (" " if text else "") + f"{rest}\u00a0мин"
    return f"{text} {'рабочего времени' if working else 'подряд'}"


@dataclass
class EffectiveView:
    institution: Institution
    at: datetime
    policy: SlaPolicy | None


@dataclass
class DeadlineRow:
    title: str
    due: datetime | None
    minutes: int | None


@dataclass
class DayRow:
    day: date
    label: str
    hours: str
    kind: str  # "work" | "off" | "holiday" | "short"


def _day_rows(calc: Any, tz: str, start: datetime, end: datetime) -> list[DayRow]:
    zone = ZoneInfo(tz)
    first = start.astimezone(zone).date()
    last = min(end.astimezone(zone).date(), first + timedelta(days=PREVIEW_DAYS_MAX))
    rows = []
    day = first
    ru_holidays = holidays.country_holidays("RU", years=range(first.year, last.year + 1))
    while day <= last:
        spans = calc.working_intervals(day) if calc is not None else []
        hours = ", ".join(
            f"{a.astimezone(zone):%H:%M}–{b.astimezone(zone):%H:%M}" for a, b in spans
        )
        year = PRODUCTION_YEARS.get(day.year)
        if not spans:
            name = ru_holidays.get(day)
            kind, label = ("holiday", f"праздник: {name}") if name else ("off", "выходной")
        elif year is not None and day in year.shortened_days:
            kind, label = "short", "сокращённый предпраздничный день"
        elif day.weekday() >= 5:
            kind, label = "work", "рабочий выходной (перенос)"
        else:
            kind, label = "work", "рабочий день"
        rows.append(DayRow(day, label, hours or "—", kind))
        day += timedelta(days=1)
    return rows


def _parse_local(value: str, tz: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=ZoneInfo(tz)) if parsed.tzinfo is None else parsed


def _policies_page(
    view: View,
    session: Session,
    now: datetime,
    *,
    institution_id: int | None = None,
    at: str = "",
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    rows = session.exec(
        select(SlaPolicy).order_by(col(SlaPolicy.effective_from).desc(), col(SlaPolicy.id).desc())
    ).all()
    territories = {t.id or 0: t for t in session.exec(select(Territory))}
    institutions = {i.id or 0: i for i in session.exec(select(Institution))}
    groups: dict[str, list[SlaPolicy]] = {}
    for row in rows:
        groups.setdefault(_scope_name(row, territories, institutions), []).append(row)
    calendars = {c.id: c for c in policies.list_calendars(session)}

    effective: EffectiveView | None = None
    deadlines: list[DeadlineRow] = []
    days: list[DayRow] = []
    preview_errors: dict[str, str] = {}
    tz = "Europe/Moscow"
    if institution_id is not None:
        institution = institutions.get(institution_id)
        if institution is None:
            preview_errors["institution_id"] = "Выберите учреждение из списка"
        else:
            tz = policies.institution_timezone(session, institution_id)
            moment = _parse_local(at, tz) if at else now
            if moment is None:
                preview_errors["at"] = "Укажите дату и время, например 2026-12-30T17:00"
            else:
                policy = policies.resolve_policy(session, institution_id, moment)
                effective = EffectiveView(institution, moment, policy)
                found = norms.resolve(session, institution_id, moment) or policies.BUILTIN_NORMS
                basis = policies.basis(
                    session,
                    working_time=found.working_time,
                    calendar_id=found.calendar_id,
                    timezone=tz,
                )
                for title, minutes in (
                    ("Первый ответ", found.first_response_minutes),
                    ("Первый ответ на срочный", found.urgent_first_response_minutes),
                    ("Окончательный ответ", found.final_answer_minutes),
                ):
                    due = basis.add(moment, minutes) if minutes else None
                    deadlines.append(DeadlineRow(title, due, minutes))
                last = max((d.due for d in deadlines if d.due), default=moment)
                days = _day_rows(basis.calendar, tz, moment, last)
    return view.render(
        "admin/policies.html",
        status_code=status_code,
        groups=groups,
        calendars=calendars,
        territories=sorted(territories.values(), key=lambda t: t.full_name),
        institutions=sorted(institutions.values(), key=lambda i: i.name),
        sectors=SECTOR_NAMES_RU,
        builtin=policies.BUILTIN,
        hours_text=_hours_text,
        effective=effective,
        deadlines=deadlines,
        days=days,
        preview_tz=tz,
        preview_errors=preview_errors,
        query={"institution_id": institution_id, "at": at},
        form=form or {"warn_percent": "75", "working_time": True},
        errors=errors or {},
        done={"saved": "Новая версия норматива сохранена."}.get(done, ""),
    )


@router.get("/admin/policies", response_class=HTMLResponse, name="admin:policies")
def policies_page(
    session: SessionDep,
    user: WebAdminDep,
    view: ViewDep,
    clock: ClockDep,
    institution_id: Annotated[str, Query()] = "",
    at: Annotated[str, Query(max_length=40)] = "",
    done: str = "",
) -> HTMLResponse:
    """The policy versions; the one in force for an institution and moment, with the
    deadlines of a question received then, day by day."""
    return _policies_page(
        view, session, clock(), institution_id=_int(institution_id), at=at, done=done
    )


def _minutes(value: str, what: str, errors: dict[str, str], key: str, required: bool) -> int | None:
    text = value.strip().replace(",", ".")
    if not text:
        if required:
            errors[key] = f"Укажите срок: {what}, в часах"
        return None
    try:
        hours = float(text)
    except ValueError:
        errors[key] = f"{what}: укажите число часов, например 8 или 1,5"
        return None
    if hours <= 0 or hours > 24 * 365:
        errors[key] = f"{what}: от нескольких минут до года"
        return None
    return round(hours * 60)


@router.post("/admin/policies", name="admin:policy_create")
def policy_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    form: FormDep,
) -> Response:
    """A new policy version from a date (versions are never edited)."""
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    values["working_time"] = form.get("working_time") == "1"  # type: ignore[assignment]
    errors: dict[str, str] = {}
    name = values.get("name", "").strip()
    if not name:
        errors["name"] = "Назовите норматив: например, «Образование — 4 часа»"
    first = _minutes(values.get("first_hours", ""), "первый ответ", errors, "first_hours", True)
    urgent = _minutes(values.get("urgent_hours", ""), "срочный", errors, "urgent_hours", False)
    nxt = _minutes(values.get("next_hours", ""), "ответ на уточнение", errors, "next_hours", False)
    final = _minutes(
        values.get("final_hours", ""), "окончательный ответ", errors, "final_hours", False
    )
    try:
        warn = float(values.get("warn_percent", "75").replace(",", ".")) / 100
        if not 0 < warn < 1:
            raise ValueError
    except ValueError:
        errors["warn_percent"] = "Предупреждать: от 1 до 99 % срока"
        warn = 0.75
    scope = values.get("scope", "everywhere")
    institution_id = _int(values.get("institution_id")) if scope == "institution" else None
    territory_id = _int(values.get("territory_id")) if scope in ("territory", "sector") else None
    sector = values.get("sector") or None if scope == "sector" else None
    if scope == "institution" and institution_id is None:
        errors["institution_id"] = "Выберите учреждение"
    if scope == "territory" and territory_id is None:
        errors["territory_id"] = "Выберите территорию"
    if scope == "sector" and not sector:
        errors["sector"] = "Выберите отрасль"
    effective_from = None
    when = values.get("effective_from", "").strip()
    if when:
        tz = "Europe/Moscow"
        territory = session.get(Territory, territory_id) if territory_id is not None else None
        if territory is not None:
            tz = territory.timezone
        elif institution_id is not None:
            tz = policies.institution_timezone(session, institution_id)
        try:
            effective_from = datetime.combine(date.fromisoformat(when), time(0), ZoneInfo(tz))
        except ValueError:
            errors["effective_from"] = "Укажите дату начала, например 2027-01-01"
    if not errors:
        try:
            data = policies.SlaPolicyCreate.model_validate(
                {
                    "name": name,
                    "institution_id": institution_id,
                    "territory_id": territory_id,
                    "sector": sector,
                    "first_response_minutes": first,
                    "urgent_first_response_minutes": urgent,
                    "next_response_minutes": nxt,
                    "final_answer_minutes": final,
                    "working_time": bool(values["working_time"]),
                    "calendar_id": _int(values.get("calendar_id")),
                    "warn_ratio": warn,
                    "effective_from": effective_from,
                }
            )
            policy = policies.create_policy(session, data, by=user.id, now=clock())
        except ValidationError:
            errors["scope"] = "Проверьте, к чему относится норматив: выберите значения из списков"
        except DomainError as exc:
            session.rollback()
            errors["scope"] = exc.message
    if errors:
        return _policies_page(view, session, clock(), form=values, errors=errors, status_code=422)
    audit.record(
        session,
        actor=user,
        action="policy.create",
        object_type="sla_policy",
        object_id=policy.id,
        after=audit.snapshot(policy, POLICY_FIELDS),
        address=client_address(request),
        summary=f"Норматив «{policy.name}» с {policy.effective_from:%d.%m.%Y}",
    )
    session.commit()
    return RedirectResponse("/admin/policies?done=saved", status_code=303)


# Business calendars (/admin/calendars).
router.include_router(calendar_admin.router)
