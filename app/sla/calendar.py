"""Business calendars for SLA maths: working hours in a time zone, without a database.

A calendar turns "N working minutes after this instant" into a UTC deadline and
measures the working time between two instants. Working time is the union of the
working intervals of each local date:

1. a date in `extra_working_days` is worked with exactly the hours given there
   (never shortened, even on a holiday);
2. a date in `extra_days_off` is off (regional holidays and the like);
3. with `use_production_calendar`, a non-working day of the Russian production
   calendar is off; a weekend day the government made a working day is worked with
   the institution's hours for that weekday if it has any, otherwise with the hours
   of the weekday that became a day off in exchange (Monday's when that is unknown);
   a shortened pre-holiday day (and any day in `extra_shortened_days`) ends
   `shorten_pre_holiday_minutes` earlier;
4. otherwise the weekly hours of the weekday.

Intervals are half-open, [start, end). Wall-clock times are resolved in the
calendar's time zone; a wall time skipped by a clock change resolves to the first
instant after the gap, a repeated one to its first occurrence. Russian zones have no
clock changes since 2014, so this only matters for other zones or old dates.

Production calendar data: the `holidays` package for holidays and transferred days
off, and `app.sla.production_calendar` for the shortened days and working weekends
of the years it encodes. Outside those years the working weekends come from the
package and a working day is shortened when the next calendar day is a holiday of
art. 112 of the Labour Code; that rule misses some shortened Saturdays, which is why
encoded years are preferred.

The shortened days are those of the five-day-week calendar; an institution with a
different regime lists its own in `extra_shortened_days`.

The working hours themselves (`CalendarSpec`, `parse_hours`, `default_spec`) are in
:mod:`app.sla.working_hours`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays

from app.sla.production_calendar import PRODUCTION_YEARS, is_statutory_holiday
from app.sla.working_hours import CalendarSpec, SecondIntervals, normalise_hours

# How far the search for working time goes before the calendar is declared empty.
_MAX_SEARCH_DAYS = 3 * 366
_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _ProductionYearInfo:
    days_off: frozenset[date]
    # Working weekend day -> weekday whose hours it takes (None: not known).
    working_weekends: Mapping[date, int | None]
    shortened: frozenset[date]


def load_year(year: int) -> None:
    """Build a year's production calendar now (a worker starting), not at the first
    clock that needs it: the `holidays` package imports every country's module the
    first time, 0.12 s here, which the first event would pay holding its locks."""
    _production_year(year)


@lru_cache(maxsize=64)
def _production_year(year: int) -> _ProductionYearInfo:
    # A fresh object per year: a shared `holidays` object fills years lazily and is
    # not safe to share between threads.
    package = holidays.country_holidays("RU", years=year)
    days_off = frozenset(day for day in package if day.year == year)
    encoded = PRODUCTION_YEARS.get(year)
    if encoded is not None:
        working_weekends: dict[date, int | None] = {
            day: off.weekday() for day, off in encoded.working_weekends.items()
        }
        return _ProductionYearInfo(
            days_off - set(working_weekends),
            MappingProxyType(working_weekends),
            encoded.shortened_days,
        )
    working_weekends = {
        day: None for day in getattr(package, "weekend_workdays", ()) if day.year == year
    }

    def is_working(day: date) -> bool:
        return day in working_weekends or (day.weekday() < 5 and day not in days_off)

    first = date(year, 1, 1)
    shortened = frozenset(
        day
        for day in (first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days))
        if is_working(day) and is_statutory_holiday(day + timedelta(days=1))
    )
    return _ProductionYearInfo(days_off, MappingProxyType(working_weekends), shortened)


def _shorten(spans: SecondIntervals, cut: int) -> SecondIntervals:
    """Take `cut` seconds off the end of the working day."""
    out = list(spans)
    while cut > 0 and out:
        lo, hi = out[-1]
        if hi - lo > cut:
            out[-1] = (lo, hi - cut)
            cut = 0
        else:
            cut -= hi - lo
            out.pop()
    return tuple(out)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


class BusinessCalendar:
    """Working-time arithmetic for one `CalendarSpec`.

    All instants in and out are timezone-aware; results are in UTC. Durations are
    exact to the microsecond; `*_minutes` methods speak minutes (float when measured).
    Instances are immutable and safe to share between threads.
    """

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self._tz: tzinfo = ZoneInfo(spec.timezone)
        self._weekly: tuple[SecondIntervals, ...] = tuple(
            normalise_hours(spec.weekly.get(weekday, ()), "") for weekday in range(7)
        )
        self._extra_working: dict[date, SecondIntervals] = {
            day: normalise_hours(hours, "") for day, hours in spec.extra_working_days.items()
        }
        self._cut = spec.shorten_pre_holiday_minutes * 60
        # Bound per instance (not lru_cache on methods) so calendars can be collected.
        self._day = lru_cache(maxsize=4096)(self._compute_day)
        self._week_total = lru_cache(maxsize=1024)(self._compute_week_total)
        self._whole = lru_cache(maxsize=16384)(self._compute_whole)

    # -- the day model -------------------------------------------------------------

    def _local_spans(self, day: date) -> SecondIntervals:
        spec = self.spec
        if day in self._extra_working:
            return self._extra_working[day]
        if day in spec.extra_days_off:
            return ()
        spans = self._weekly[day.weekday()]
        shortened = day in spec.extra_shortened_days
        if spec.use_production_calendar:
            info = _production_year(day.year)
            if day in info.working_weekends:
                if not spans:
                    exchanged = info.working_weekends[day]
                    spans = self._weekly[0 if exchanged is None else exchanged]
            elif day in info.days_off:
                return ()
            shortened = shortened or day in info.shortened
        if shortened:
            spans = _shorten(spans, self._cut)
        return spans

    def _wall_to_utc(self, day: date, seconds: int) -> datetime:
        """The first instant whose local wall time is at or after `day` + `seconds`."""
        wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
        instant = wall.replace(tzinfo=self._tz).astimezone(UTC)
        if instant.astimezone(self._tz).replace(tzinfo=None) == wall:
            return instant  # exists; fold=0 picked the first occurrence
        # Skipped by a clock change: search between the two readings of the gap.
        lo = wall.replace(tzinfo=self._tz, fold=1).astimezone(UTC)
        hi = instant
        if hi < lo:
            lo, hi = hi, lo
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(microsecond=0)
            if mid.astimezone(self._tz).replace(tzinfo=None) >= wall:
                hi = mid
            else:
                lo = mid
        return hi

    def _compute_day(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        out: list[tuple[datetime, datetime]] = []
        for lo, hi in self._local_spans(day):
            start = self._wall_to_utc(day, lo)
            end = self._wall_to_utc(day, hi)
            if out and start < out[-1][1]:
                start = out[-1][1]
            if end > start:
                out.append((start, end))
        return tuple(out)

    def _day_total(self, day: date) -> timedelta:
        return sum((end - start for start, end in self._day(day)), _ZERO)

    def _compute_week_total(self, monday: date) -> timedelta:
        return sum((self._day_total(monday + timedelta(days=n)) for n in range(7)), _ZERO)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._tz).date()

    # -- public API ----------------------------------------------------------------

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Working intervals of a local date as [start, end) pairs of UTC datetimes."""
        return list(self._day(day))

    def is_working_day(self, day: date) -> bool:
        """Whether the local date has any working time."""
        return bool(self._day(day))

    def is_working_time(self, at: datetime) -> bool:
        at = _aware(at, "at")
        local = self._local_date(at)
        return any(
            start <= at < end
            for day in (local - timedelta(days=1), local, local + timedelta(days=1))
            for start, end in self._day(day)
        )

    def next_working_instant(self, at: datetime) -> datetime:
        """`at` itself if it is working time, else the start of the next working interval.

        Raises ValueError if the calendar has no working time within three years.
        """
        at = _aware(at, "at")
        first = self._local_date(at) - timedelta(days=1)
        for n in range(_MAX_SEARCH_DAYS):
            for start, end in self._day(first + timedelta(days=n)):
                if end > at:
                    return max(start, at)
        raise ValueError("the calendar has no working time within three years")

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The UTC instant at which `amount` of working time has elapsed after `start`.

        A zero amount returns `start` (in UTC) as is, even outside working hours. A
        deadline that falls exactly at the end of a working interval is that end (a
        target met by 18:00 Friday is due at 18:00 Friday, not at 09:00 Monday).
        Raises ValueError for a negative amount or a calendar without working time.
        """
        start = _aware(start, "start")
        if amount < _ZERO:
            raise ValueError("the amount of working time must not be negative")
        if amount == _ZERO:
            return start
        remaining = amount
        local = self._local_date(start)
        # The days around the start are clipped to it; later days are whole.
        for day in (local - timedelta(days=1), local, local + timedelta(days=1)):
            for lo, hi in self._day(day):
                if hi <= start:
                    continue
                lo = max(lo, start)
                if remaining <= hi - lo:
                    return lo + remaining
                remaining -= hi - lo
        day = local + timedelta(days=2)
        idle = 0  # days in a row without working time, to stop on an empty calendar
        while idle < _MAX_SEARCH_DAYS:
            if day.weekday() == 0:
                week = self._week_total(day)
                if week < remaining:
                    remaining -= week
                    idle = idle + 7 if week == _ZERO else 0
                    day += timedelta(days=7)
                    continue
            total = self._day_total(day)
            if total < remaining:
                remaining -= total
                idle = idle + 1 if total == _ZERO else 0
            else:
                for lo, hi in self._day(day):
                    if remaining <= hi - lo:
                        return lo + remaining
                    remaining -= hi - lo
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time within three years")

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """`add_working_time` in minutes; 0 returns `start` unchanged (in UTC).

        Fractional minutes (a warning at 75 % of a target) are rounded to the microsecond.
        """
        return self.add_working_time(start, timedelta(minutes=minutes))

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Exact working time in [start, end); zero when `end <= start`."""
        start = _aware(start, "start")
        end = _aware(end, "end")
        if end <= start:
            return _ZERO
        first = self._local_date(start)
        last = self._local_date(end)
        # Days strictly between the start's and the end's local dates (give or take one,
        # for intervals that cross midnight in UTC) are whole; only the edges are clipped.
        inner_first, inner_last = first + timedelta(days=2), last - timedelta(days=2)
        edges = [first + timedelta(days=n) for n in (-1, 0, 1)]
        edges += [last + timedelta(days=n) for n in (-1, 0, 1)]
        total = _ZERO
        for day in sorted(set(edges)):
            if inner_first <= day <= inner_last:
                continue  # an edge of one side that is inside the other's range
            for lo, hi in self._day(day):
                lo, hi = max(lo, start), min(hi, end)
                if hi > lo:
                    total += hi - lo
        if inner_first <= inner_last:
            total += self._whole(inner_first, inner_last)
        return total

    def _compute_whole(self, first: date, last: date) -> timedelta:
        """Working time of the whole days first..last (inclusive). Cached: a queue shows
        many clocks overdue by weeks against the same "now", polled again and again."""
        total = _ZERO
        day = first
        while day <= last:
            if day.weekday() == 0 and day + timedelta(days=6) <= last:
                total += self._week_total(day)
                day += timedelta(days=7)
                continue
            total += self._day_total(day)
            day += timedelta(days=1)
        return total

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end) as a float, exact to the microsecond.

        `working_minutes_between(s, add_working_minutes(s, n)) == n` for any n >= 0.
        """
        return self.working_time_between(start, end) / _MINUTE


@lru_cache(maxsize=256)
def calendar_for(spec: CalendarSpec) -> BusinessCalendar:
    """A shared calendar per spec, so its per-day caches survive between uses."""
    return BusinessCalendar(spec)
