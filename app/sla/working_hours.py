"""Working hours of an institution as a value: weekly intervals, overrides, the time zone.

`CalendarSpec` is what an SLA policy stores; :mod:`app.sla.calendar` turns it into
working-time arithmetic. Wall times here are local to the spec's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RUSSIAN_TIMEZONES: tuple[str, ...] = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
)

_DAY_SECONDS = 24 * 60 * 60

Hours = Sequence[tuple[time, time]]
# Working intervals of one local date in seconds since local midnight; 86400 is the
# midnight that ends the day.
SecondIntervals = tuple[tuple[int, int], ...]


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def normalise_hours(hours: Hours, what: str) -> SecondIntervals:
    """Validate intervals of one day; `time(0, 0)` as an end means the midnight after."""
    spans: list[tuple[int, int]] = []
    for start, end in hours:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"{what}: working hours are local wall times, without tzinfo")
        if start.microsecond or end.microsecond:
            raise ValueError(f"{what}: working hours have a one-second resolution")
        lo = _seconds(start)
        hi = _seconds(end) or _DAY_SECONDS
        if hi <= lo:
            raise ValueError(f"{what}: interval {start}-{end} does not end after it starts")
        spans.append((lo, hi))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo < merged[-1][1]:
            raise ValueError(f"{what}: working intervals overlap")
        if merged and lo == merged[-1][1]:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def parse_hours(spans: Sequence[Sequence[str]]) -> list[tuple[time, time]]:
    """Parse `[["09:00", "13:00"], ["14:00", "24:00"]]`; "24:00" means midnight."""
    parsed: list[tuple[time, time]] = []
    for span in spans:
        if len(span) != 2:
            raise ValueError(f"a working interval is a [start, end] pair, got {span!r}")
        start, end = (time(0, 0) if s == "24:00" else time.fromisoformat(s) for s in span)
        parsed.append((start, end))
    return parsed


@dataclass(frozen=True)
class CalendarSpec:
    """Working hours of an institution. Times are local wall times of `timezone`.

    `weekly` maps a weekday (0 is Monday) to its working intervals; a lunch break is
    two intervals, a missing weekday is a day off, `time(0, 0)` as an end is the
    midnight at the end of the day. Construction validates everything.
    """

    timezone: str
    weekly: Mapping[int, Hours]
    use_production_calendar: bool = True
    extra_days_off: frozenset[date] = frozenset()
    extra_working_days: Mapping[date, Hours] = field(default_factory=lambda: MappingProxyType({}))
    shorten_pre_holiday_minutes: int = 60
    # Local dates shortened like a pre-holiday day in addition to the official ones
    # (e.g. before a regional holiday, when the regional law says so).
    extra_shortened_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        for weekday, hours in self.weekly.items():
            if weekday not in range(7):
                raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {weekday!r}")
            normalise_hours(hours, f"weekday {weekday}")
        for day, hours in self.extra_working_days.items():
            normalise_hours(hours, f"extra working day {day}")
        both = self.extra_days_off & set(self.extra_working_days)
        if both:
            raise ValueError(f"dates both off and working: {sorted(both)}")
        if self.shorten_pre_holiday_minutes < 0:
            raise ValueError("shorten_pre_holiday_minutes must not be negative")

    def __hash__(self) -> int:
        return hash(
            (
                self.timezone,
                tuple(normalise_hours(self.weekly.get(weekday, ()), "") for weekday in range(7)),
                self.use_production_calendar,
                self.extra_days_off,
                frozenset(
                    (day, normalise_hours(hours, ""))
                    for day, hours in self.extra_working_days.items()
                ),
                self.shorten_pre_holiday_minutes,
                self.extra_shortened_days,
            )
        )


def default_spec(timezone: str = "Europe/Moscow") -> CalendarSpec:
    """Monday to Friday, 09:00-18:00 local time, with the production calendar."""
    office = ((time(9, 0), time(18, 0)),)
    return CalendarSpec(timezone, MappingProxyType(dict.fromkeys(range(5), office)))


DEFAULT = default_spec()
