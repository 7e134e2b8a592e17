"""The dashboard's periods (this week, last week, 30 days, month, quarter, year, custom),
as instants bounded by local midnights of the territory's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.core import format as fmt
from app.core.errors import Invalid

PERIODS: dict[str, str] = {
    "week": "Эта неделя",
    "last_week": "Прошлая неделя",
    "30d": "30 дней",
    "month": "Этот месяц",
    "quarter": "Этот квартал",
    "year": "Этот год",
    "custom": "Свой период",
}
DEFAULT_PERIOD = "30d"
# Longer than this, the trend is drawn by week.
DAILY_UP_TO_DAYS = 45


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    start: datetime
    end: datetime
    # The local dates shown (the last one inclusive).
    first_day: date
    last_day: date

    @property
    def by_week(self) -> bool:
        return (self.end - self.start) > timedelta(days=DAILY_UP_TO_DAYS)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"Неверная дата: {value}", code="invalid_date") from exc


def resolve(
    key: str | None, now: datetime, timezone: str, start: str | None = None, end: str | None = None
) -> Period:
    """The period `key` as of `now` in the zone `timezone`; `custom` takes the local
    dates `start` and `end` (both inclusive). Raises Invalid for a bad custom period."""
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    key = key if key in PERIODS else DEFAULT_PERIOD
    if key == "custom" or (start and key == DEFAULT_PERIOD and end):
        if not start or not end:
            raise Invalid("Укажите начало и конец периода", code="invalid_period")
        first, last = parse_day(start), parse_day(end)
        if last < first:
            raise Invalid(
                "Конец периода раньше начала — поменяйте даты местами", code="invalid_period"
            )
        return Period(
            "custom", _midnight(first, tz), _midnight(last + timedelta(days=1), tz), first, last
        )
    if key == "week":
        first = today - timedelta(days=today.weekday())
    elif key == "last_week":
        first = today - timedelta(days=today.weekday() + 7)
        last = first + timedelta(days=6)
        return Period(
            key, _midnight(first, tz), _midnight(last + timedelta(days=1), tz), first, last
        )
    elif key == "month":
        first = today.replace(day=1)
    elif key == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    elif key == "year":
        first = date(today.year, 1, 1)
    else:
        first = today - timedelta(days=29)
    return Period(key, _midnight(first, tz), _midnight(today + timedelta(days=1), tz), first, today)


def period_text(start: datetime, end: datetime, timezone: str) -> str:
    """«01.03.2026 – 31.03.2026 (МСК+2)»: local dates, the end inclusive when the period
    ends at a local midnight, else with times."""
    tz = ZoneInfo(timezone)
    a, b = start.astimezone(tz), end.astimezone(tz)
    zone = fmt.zone_label(timezone, start)
    if a.time() == b.time() == datetime.min.time():
        last = b - timedelta(days=1)
        return f"{a:%d.%m.%Y} – {last:%d.%m.%Y} ({zone})"
    return f"{a:%d.%m.%Y %H:%M} – {b:%d.%m.%Y %H:%M} ({zone})"
