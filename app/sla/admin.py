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
from app.auth import service as auth_service
from app.auth.deps import WebAdminDep, WebAdminFormDep
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.directory.models import SECTOR_NAMES_RU, Institution, Territory
from app.sla import norms, policies
from app.sla.models import BusinessCalendar, SlaPolicy
from app.sla.production_calendar import PRODUCTION_YEARS

router = APIRouter(include_in_schema=False)

WEEKDAYS = ["пн", "вт", "ср", "чт", "пт", "сб", "вс"]
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
CALENDAR_FIELDS = (
    "name",
    "timezone",
    "weekly",
    "use_production_calendar",
    "extra_days_off",
    "extra_working_days",
)
PREVIEW_DAYS_MAX = 31


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


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
        address=_address(request),
        summary=f"Норматив «{policy.name}» с {policy.effective_from:%d.%m.%Y}",
    )
    session.commit()
    return RedirectResponse("/admin/policies?done=saved", status_code=303)


# --- calendars ---------------------------------------------------------------------


def _spans_text(spans: list[list[str]]) -> str:
    return ", ".join(f"{a}–{b}" for a, b in spans)


def _parse_spans(text: str) -> list[list[str]]:
    """«09:00-13:00, 14:00-18:00» -> [["09:00", "13:00"], ["14:00", "18:00"]]."""
    spans = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().replace("–", "-").replace("—", "-")
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise ValueError(part)
        a, b = (v.strip().zfill(5) for v in (start, end))
        for value in (a, b):
            if value != "24:00":
                time.fromisoformat(value)
        spans.append([a, b])
    return spans


def _week_text(weekly: dict[str, list[list[str]]]) -> str:
    """«пн–пт 09:00–18:00; сб 10:00–14:00»: equal neighbouring days grouped."""
    parts: list[str] = []
    day = 0
    while day < 7:
        spans = weekly.get(str(day)) or []
        end = day
        while end + 1 < 7 and (weekly.get(str(end + 1)) or []) == spans:
            end += 1
        if spans:
            days = WEEKDAYS[day] if end == day else f"{WEEKDAYS[day]}–{WEEKDAYS[end]}"
            parts.append(f"{days} {_spans_text(spans)}")
        day = end + 1
    return "; ".join(parts) or "нет рабочих часов"


def _calendar_form(row: BusinessCalendar | None) -> dict[str, Any]:
    if row is None:
        weekly = {str(d): [["09:00", "18:00"]] for d in range(5)}
        return {
            "name": "",
            "timezone": "",
            "use_production_calendar": True,
            "extra_days_off": "",
            "extra_working_days": "",
            **{f"day{d}": _spans_text(weekly.get(str(d), [])) for d in range(7)},
        }
    return {
        "name": row.name,
        "timezone": row.timezone or "",
        "use_production_calendar": row.use_production_calendar,
        "extra_days_off": "\n".join(row.extra_days_off),
        "extra_working_days": "\n".join(
            f"{d} {_spans_text(s)}" for d, s in sorted(row.extra_working_days.items())
        ),
        **{f"day{d}": _spans_text(row.weekly.get(str(d), [])) for d in range(7)},
    }


def _calendars_page(
    view: View,
    session: Session,
    now: datetime,
    *,
    edit: BusinessCalendar | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    years = sorted(PRODUCTION_YEARS)
    return view.render(
        "admin/calendars.html",
        status_code=status_code,
        calendars=policies.list_calendars(session),
        week_text=_week_text,
        edit=edit,
        form=form or _calendar_form(edit),
        errors=errors or {},
        weekdays=WEEKDAYS,
        timezones=auth_service.TIMEZONES,
        years=years,
        next_year=now.year + 1,
        next_year_missing=(now.year + 1) not in PRODUCTION_YEARS,
        done={
            "saved": "Календарь сохранён.",
            "deleted": "Календарь удалён.",
        }.get(done, ""),
    )


@router.get("/admin/calendars", response_class=HTMLResponse, name="admin:calendars")
def calendars_page(
    session: SessionDep, user: WebAdminDep, view: ViewDep, clock: ClockDep, done: str = ""
) -> HTMLResponse:
    """Business calendars and the production-calendar years Otklik knows."""
    return _calendars_page(view, session, clock(), done=done)


@router.get("/admin/calendars/{calendar_id}", response_class=HTMLResponse, name="admin:calendar")
def calendar_form(
    calendar_id: int, session: SessionDep, user: WebAdminDep, view: ViewDep, clock: ClockDep
) -> HTMLResponse:
    row = session.get(BusinessCalendar, calendar_id)
    if row is None:
        raise NotFound("Страница не найдена")
    return _calendars_page(view, session, clock(), edit=row)


def _calendar_data(form: FormData) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the values as typed, the API's CalendarWrite fields, errors)."""
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    values["use_production_calendar"] = form.get("use_production_calendar") == "1"
    errors: dict[str, str] = {}
    weekly: dict[str, list[list[str]]] = {}
    for d in range(7):
        try:
            spans = _parse_spans(values.get(f"day{d}", ""))
        except ValueError:
            errors[f"day{d}"] = f"{WEEKDAYS[d]}: часы как 09:00-13:00, 14:00-18:00"
            continue
        if spans:
            weekly[str(d)] = spans
    days_off = []
    for part in values.get("extra_days_off", "").replace(",", "\n").split():
        try:
            days_off.append(date.fromisoformat(part).isoformat())
        except ValueError:
            errors.setdefault("extra_days_off", f"«{part}»: даты как 2027-01-09, по одной в строке")
    working: dict[str, list[list[str]]] = {}
    for line in values.get("extra_working_days", "").splitlines():
        if not line.strip():
            continue
        day, _, hours = line.strip().partition(" ")
        try:
            working[date.fromisoformat(day).isoformat()] = _parse_spans(hours) or [
                ["09:00", "18:00"]
            ]
        except ValueError:
            errors["extra_working_days"] = (
                f"«{line.strip()}»: дата и часы, например 2027-12-26 10:00-14:00"
            )
    if not values.get("name", "").strip():
        errors["name"] = "Назовите календарь: например, «Поликлиники — без выходных»"
    data = {
        "name": values.get("name", "").strip(),
        "timezone": values.get("timezone") or None,
        "weekly": weekly,
        "use_production_calendar": values["use_production_calendar"],
        "extra_days_off": days_off,
        "extra_working_days": working,
    }
    return values, data, errors


def _save_calendar(
    request: Request,
    session: Session,
    user: Any,
    view: View,
    now: datetime,
    form: FormData,
    row: BusinessCalendar | None,
) -> Response:
    values, data, errors = _calendar_data(form)
    saved: BusinessCalendar | None = None
    before = audit.snapshot(row, CALENDAR_FIELDS) if row else None
    if not errors:
        try:
            write = policies.CalendarWrite.model_validate(data)
            saved = (
                policies.create_calendar(session, write, now)
                if row is None
                else policies.update_calendar(session, row.id or 0, write)
            )
        except ValidationError:
            errors["timezone"] = "Выберите часовой пояс из списка"
        except DomainError as exc:
            session.rollback()
            errors["name" if exc.code == "calendar_exists" else "day0"] = exc.message
    if errors or saved is None:
        edit = session.get(BusinessCalendar, row.id) if row else None
        return _calendars_page(
            view, session, now, edit=edit, form=values, errors=errors, status_code=422
        )
    audit.record(
        session,
        actor=user,
        action="calendar.create" if row is None else "calendar.update",
        object_type="business_calendar",
        object_id=saved.id,
        before=before,
        after=audit.snapshot(saved, CALENDAR_FIELDS),
        address=_address(request),
        summary=f"Календарь «{saved.name}»",
    )
    session.commit()
    return RedirectResponse("/admin/calendars?done=saved", status_code=303)


@router.post("/admin/calendars", name="admin:calendar_create")
def calendar_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    form: FormDep,
) -> Response:
    return _save_calendar(request, session, user, view, clock(), form, None)


@router.post("/admin/calendars/{calendar_id}", name="admin:calendar_save")
def calendar_save(
    calendar_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    form: FormDep,
) -> Response:
    row = session.get(BusinessCalendar, calendar_id)
    if row is None:
        raise NotFound("Страница не найдена")
    return _save_calendar(request, session, user, view, clock(), form, row)


@router.post("/admin/calendars/{calendar_id}/delete", name="admin:calendar_delete")
def calendar_delete(
    calendar_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
) -> Response:
    """Refused while a policy counts in this calendar (409 `calendar_in_use`)."""
    row = session.get(BusinessCalendar, calendar_id)
    if row is None:
        raise NotFound("Страница не найдена")
    before = audit.snapshot(row, CALENDAR_FIELDS)
    try:
        policies.delete_calendar(session, calendar_id)
    except DomainError as exc:
        session.rollback()
        row = session.get(BusinessCalendar, calendar_id)
        return _calendars_page(
            view,
            session,
            clock(),
            edit=row,
            errors={"name": f"{exc.message}: сначала выберите другой календарь в нормативах"},
            status_code=409,
        )
    audit.record(
        session,
        actor=user,
        action="calendar.delete",
        object_type="business_calendar",
        object_id=calendar_id,
        before=before,
        address=_address(request),
        summary=f"Календарь «{before['name']}»",
    )
    session.commit()
    return RedirectResponse("/admin/calendars?done=deleted", status_code=303)
