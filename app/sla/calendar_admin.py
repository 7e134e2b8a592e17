"""Business calendars in the browser (/admin/calendars): weekly hours, extra days off
and working days, and the production-calendar years Otklik knows, with a warning when
next year's is missing. Changes go through `app.sla.policies` (as the JSON API's) and
are written to the audit log."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from app.auth import audit
from app.auth import service as auth_service
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.sla import policies
from app.sla.models import BusinessCalendar
from app.sla.production_calendar import PRODUCTION_YEARS

router = APIRouter(include_in_schema=False)

WEEKDAYS = ["пн", "вт", "ср", "чт", "пт", "сб", "вс"]
CALENDAR_FIELDS = (
    "name",
    "timezone",
    "weekly",
    "use_production_calendar",
    "extra_days_off",
    "extra_working_days",
)


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


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
        address=client_address(request),
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
        address=client_address(request),
        summary=f"Календарь «{before['name']}»",
    )
    session.commit()
    return RedirectResponse("/admin/calendars?done=deleted", status_code=303)
