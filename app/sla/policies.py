"""SLA policies and calendars: versions, the most specific policy for a question, the time basis.

A policy attaches to an institution, a sector (optionally within a territory), a
territory (inherited down the tree) or to nothing (a configured global default).
The most specific attachment wins: institution > sector > territory (nearest
ancestor) > global > the built-in default. Among versions of one attachment, the
newest whose `effective_from` is not after the question's creation wins, so a
question keeps the norm it was created under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from pydantic import field_validator
from sqlmodel import Field, Session, SQLModel, col, select

from app.core import snapshots
from app.core.errors import Conflict, Invalid, NotFound
from app.directory import snapshots as directory
from app.directory.models import Institution, Sector, Territory
from app.sla import norms
from app.sla.calendar import BusinessCalendar as Calc
from app.sla.calendar import calendar_for
from app.sla.models import BusinessCalendar, SlaPolicy, SlaPolicyBase
from app.sla.working_hours import CalendarSpec, default_spec, parse_hours

DEFAULT_TIMEZONE = "Europe/Moscow"

# Regional norms: 8 working hours for a first answer, 4 for urgent ones, 7 working
# days for a final answer; warn at 75 %.
BUILTIN = SlaPolicyBase(
    name="По умолчанию",
    first_response_minutes=8 * 60,
    urgent_first_response_minutes=4 * 60,
    next_response_minutes=8 * 60,
    # Seven working days of the default calendar (Monday-Friday 09:00-18:00).
    final_answer_minutes=7 * 9 * 60,
    working_time=True,
    calendar_id=None,
    warn_ratio=0.75,
    effective_from=datetime(2000, 1, 1, tzinfo=UTC),
)
BUILTIN_NORMS = norms.Norms.of(BUILTIN)


# --- the time basis -----------------------------------------------------------


@dataclass(frozen=True)
class Basis:
    """Minutes of a target: working minutes of a calendar, or wall-clock minutes."""

    calendar: Calc | None

    def add(self, start: datetime, minutes: float) -> datetime:
        if self.calendar is None:
            return start + timedelta(minutes=minutes)
        return self.calendar.add_working_minutes(start, minutes)

    def between(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        if self.calendar is None:
            return (end - start) / timedelta(minutes=1)
        return self.calendar.working_minutes_between(start, end)


def _hours(spans: Sequence[Sequence[str]], what: str) -> list[Any]:
    try:
        return parse_hours(spans)
    except (ValueError, TypeError) as exc:
        raise Invalid(f"{what}: неверные часы работы ({exc})", code="invalid_hours") from exc


def spec_of(row: BusinessCalendar | None, timezone: str) -> CalendarSpec:
    """The calendar spec of a stored calendar (None: the default office week) in `timezone`."""
    if row is None:
        return default_spec(timezone)
    try:
        return CalendarSpec(
            timezone=row.timezone or timezone,
            weekly=MappingProxyType(
                {int(day): _hours(spans, f"день {day}") for day, spans in row.weekly.items()}
            ),
            use_production_calendar=row.use_production_calendar,
            extra_days_off=frozenset(date.fromisoformat(d) for d in row.extra_days_off),
            extra_working_days=MappingProxyType(
                {
                    date.fromisoformat(d): _hours(spans, d)
                    for d, spans in row.extra_working_days.items()
                }
            ),
        )
    except ValueError as exc:
        raise Invalid(f"Неверный календарь: {exc}", code="invalid_calendar") from exc


def basis(session: Session, *, working_time: bool, calendar_id: int | None, timezone: str) -> Basis:
    if not working_time:
        return Basis(None)
    if calendar_id is None:
        return _office_basis(timezone)
    return snapshots.get(
        session,
        ("sla.basis", calendar_id, timezone),
        lambda s: Basis(calendar_for(spec_of(s.get(BusinessCalendar, calendar_id), timezone))),
    )


@lru_cache(maxsize=64)
def _office_basis(timezone: str) -> Basis:
    # The default office week depends on the time zone alone: build its spec once.
    return Basis(calendar_for(spec_of(None, timezone)))


def office_calendar(timezone: str | None) -> Calc:
    """Monday to Friday 09:00-18:00 with the production calendar: when people are at work."""
    return calendar_for(default_spec(timezone or DEFAULT_TIMEZONE))


# --- resolution ---------------------------------------------------------------


def institution_timezone(session: Session, institution_id: int) -> str:
    institution = directory.institution(session, institution_id)
    return institution.timezone if institution else DEFAULT_TIMEZONE


def resolve_policy(session: Session, institution_id: int, at: datetime) -> SlaPolicy | None:
    """The policy version in force for an institution's question created at `at`.

    None means the built-in default.
    """
    found = norms.resolve(session, institution_id, at)
    return session.get(SlaPolicy, found.id) if found is not None else None


# --- policy and calendar management -------------------------------------------


class SlaPolicyCreate(SQLModel):
    name: str = Field(min_length=1, max_length=255)
    territory_id: int | None = None
    institution_id: int | None = None
    sector: Sector | None = None
    first_response_minutes: int = Field(default=BUILTIN.first_response_minutes, gt=0)
    urgent_first_response_minutes: int | None = Field(
        default=BUILTIN.urgent_first_response_minutes, gt=0
    )
    next_response_minutes: int | None = Field(default=BUILTIN.next_response_minutes, gt=0)
    final_answer_minutes: int | None = Field(default=BUILTIN.final_answer_minutes, gt=0)
    working_time: bool = True
    calendar_id: int | None = None
    warn_ratio: float = Field(default=0.75, gt=0, lt=1)
    # None: from now on.
    effective_from: datetime | None = None

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("effective_from needs a time zone offset")
        return value


class SlaPolicyRead(SlaPolicyBase):
    id: int
    created_at: datetime
    created_by: int | None


def create_policy(
    session: Session, data: SlaPolicyCreate, *, by: int | None, now: datetime
) -> SlaPolicy:
    """A new policy version. Versions are never edited: a changed norm is a new version."""
    if data.institution_id is not None and (data.territory_id is not None or data.sector):
        raise Invalid(
            "Политика учреждения не может одновременно относиться к территории или отрасли",
            code="policy_scope",
        )
    if data.institution_id is not None and session.get(Institution, data.institution_id) is None:
        raise NotFound(f"Учреждение {data.institution_id} не найдено")
    if data.territory_id is not None and session.get(Territory, data.territory_id) is None:
        raise NotFound(f"Территория {data.territory_id} не найдена")
    if data.calendar_id is not None and session.get(BusinessCalendar, data.calendar_id) is None:
        raise NotFound(f"Календарь {data.calendar_id} не найден")
    policy = SlaPolicy(
        **data.model_dump(exclude={"effective_from", "sector"}),
        sector=str(data.sector) if data.sector else None,
        effective_from=data.effective_from or now,
        created_at=now,
        created_by=by,
    )
    session.add(policy)
    session.flush()
    return policy


def list_policies(session: Session, *, after_id: int, limit: int) -> Sequence[SlaPolicy]:
    return session.exec(
        select(SlaPolicy)
        .where(col(SlaPolicy.id) > after_id)
        .order_by(col(SlaPolicy.id))
        .limit(limit)
    ).all()


class CalendarWrite(SQLModel):
    name: str = Field(min_length=1, max_length=255)
    timezone: str | None = None
    weekly: dict[str, list[list[str]]] = Field(
        default_factory=lambda: {str(d): [["09:00", "18:00"]] for d in range(5)}
    )
    use_production_calendar: bool = True
    extra_days_off: list[str] = Field(default_factory=list)
    extra_working_days: dict[str, list[list[str]]] = Field(default_factory=dict)


class CalendarRead(CalendarWrite):
    id: int
    created_at: datetime


def _validate_calendar(data: CalendarWrite) -> None:
    row = BusinessCalendar(**data.model_dump())
    for day in row.weekly:
        if day not in {str(d) for d in range(7)}:
            raise Invalid(
                f"День недели «{day}»: ожидается 0 (понедельник) … 6", code="invalid_hours"
            )
    spec = spec_of(row, data.timezone or DEFAULT_TIMEZONE)
    if not any(spec.weekly.values()) and not spec.extra_working_days:
        raise Invalid("В календаре нет рабочего времени", code="invalid_calendar")


def create_calendar(session: Session, data: CalendarWrite, now: datetime) -> BusinessCalendar:
    _validate_calendar(data)
    if session.exec(select(BusinessCalendar).where(BusinessCalendar.name == data.name)).first():
        raise Conflict(f"Календарь «{data.name}» уже существует", code="calendar_exists")
    row = BusinessCalendar(**data.model_dump(), created_at=now)
    session.add(row)
    session.flush()
    return row


def update_calendar(session: Session, calendar_id: int, data: CalendarWrite) -> BusinessCalendar:
    """Replace a calendar. Deadlines already set keep their values until recomputed."""
    row = get_calendar(session, calendar_id)
    _validate_calendar(data)
    other = session.exec(select(BusinessCalendar).where(BusinessCalendar.name == data.name)).first()
    if other is not None and other.id != calendar_id:
        raise Conflict(f"Календарь «{data.name}» уже существует", code="calendar_exists")
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


def get_calendar(session: Session, calendar_id: int) -> BusinessCalendar:
    row = session.get(BusinessCalendar, calendar_id)
    if row is None:
        raise NotFound("Календарь не найден", code="calendar_not_found")
    return row


def delete_calendar(session: Session, calendar_id: int) -> None:
    row = get_calendar(session, calendar_id)
    used = session.exec(select(SlaPolicy.id).where(SlaPolicy.calendar_id == calendar_id)).first()
    if used is not None:
        raise Conflict("Календарь используется в политике SLA", code="calendar_in_use")
    session.delete(row)
    session.flush()


def list_calendars(session: Session) -> Sequence[BusinessCalendar]:
    return session.exec(select(BusinessCalendar).order_by(col(BusinessCalendar.id))).all()
