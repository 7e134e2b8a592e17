from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.sla.calendar import BusinessCalendar
from app.sla.production_calendar import PRODUCTION_YEARS
from app.sla.working_hours import (
    DEFAULT,
    RUSSIAN_TIMEZONES,
    CalendarSpec,
    default_spec,
)

MINUTE = timedelta(minutes=1)
MSK = ZoneInfo("Europe/Moscow")
OFFICE = ((time(9), time(18)),)
LUNCH = ((time(9), time(13)), (time(14), time(18)))


def msk(*args: int) -> datetime:
    """A Moscow wall time: msk(2025, 3, 7, 17) is 17:00 on 7 Mar 2025."""
    return datetime(*args).replace(tzinfo=MSK)  # type: ignore[arg-type]


def five_days(hours: Sequence[tuple[time, time]], tz: str = "Europe/Moscow") -> CalendarSpec:
    return CalendarSpec(tz, dict.fromkeys(range(5), hours))


# ------------------------------------------------------------------------------------
# The oracle: a naive, independent model. It classifies each local date straight from
# the data (production calendar module + the holidays package), keeps the working
# minutes of the day as a set, and walks UTC time minute by minute through zoneinfo.

# Art. 112 of the Labour Code, written out again on purpose.
LABOUR_CODE_HOLIDAYS = {(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8)} | {
    (2, 23),
    (3, 8),
    (5, 1),
    (5, 9),
    (6, 12),
    (11, 4),
}


@cache
def ru_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("RU", years=year)


def minute_set(hours: Sequence[tuple[time, time]]) -> set[int]:
    out: set[int] = set()
    for start, end in hours:
        stop = end.hour * 60 + end.minute
        out.update(range(start.hour * 60 + start.minute, stop if stop else 24 * 60))
    return out


class Oracle:
    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self.days: dict[date, frozenset[int]] = {}

    def day_minutes(self, day: date) -> frozenset[int]:
        if day not in self.days:
            self.days[day] = frozenset(self._classify(day))
        return self.days[day]

    def _classify(self, day: date) -> set[int]:
        spec = self.spec
        if day in spec.extra_working_days:
            return minute_set(spec.extra_working_days[day])
        if day in spec.extra_days_off:
            return set()
        working = minute_set(spec.weekly.get(day.weekday(), ()))
        shortened = day in spec.extra_shortened_days
        if spec.use_production_calendar:
            package = ru_holidays(day.year)
            data = PRODUCTION_YEARS.get(day.year)
            exchanged: Mapping[date, date | None]
            if data is not None:
                exchanged = data.working_weekends
            else:
                exchanged = dict.fromkeys(package.weekend_workdays)
            if day in exchanged:
                if not working:
                    swap = exchanged[day]
                    weekday = swap.weekday() if swap is not None else 0
                    working = minute_set(spec.weekly.get(weekday, ()))
            elif day in package:
                return set()
            if data is not None:
                shortened = shortened or day in data.shortened_days
            else:
                tomorrow = day + timedelta(days=1)
                official_workday = day in exchanged or (day.weekday() < 5 and day not in package)
                shortened = shortened or (
                    official_workday and (tomorrow.month, tomorrow.day) in LABOUR_CODE_HOLIDAYS
                )
        if shortened:
            for minute in sorted(working, reverse=True)[: spec.shorten_pre_holiday_minutes]:
                working.discard(minute)
        return working

    def is_working(self, instant: datetime) -> bool:
        local = instant.astimezone(self.tz)
        return local.hour * 60 + local.minute in self.day_minutes(local.date())

    def between(self, start: datetime, end: datetime) -> int:
        steps = max(0, (end - start) // MINUTE)
        return sum(self.is_working(start + k * MINUTE) for k in range(steps))

    def add(self, start: datetime, minutes: int) -> datetime:
        if minutes == 0:
            return start
        moment, done = start, 0
        while True:
            if self.is_working(moment):
                done += 1
                if done == minutes:
                    return moment + MINUTE
            moment += MINUTE

    def next_instant(self, at: datetime) -> datetime:
        while not self.is_working(at):
            at += MINUTE
        return at


# ------------------------------------------------------------------------------------
# Strategies

# Dates where the calendar is interesting: shortened days, working weekends, the days
# off given in exchange, year boundaries, and a year outside the encoded data (2028).
ANCHORS = sorted(
    {day for year in PRODUCTION_YEARS.values() for day in year.shortened_days}
    | {day for year in PRODUCTION_YEARS.values() for day in year.working_weekends}
    | {day for year in PRODUCTION_YEARS.values() for day in year.working_weekends.values()}
    | {date(year, 1, 1) for year in range(2022, 2029)}
    | {date(2028, m, d) for m, d in ((2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4))}
    | {date(2025, 10, 10), date(2026, 7, 15)}
)


def as_time(minute: int) -> time:
    return time(0) if minute == 24 * 60 else time(minute // 60, minute % 60)


@st.composite
def day_hours(draw: st.DrawFn) -> list[tuple[time, time]]:
    points = sorted(draw(st.lists(st.integers(0, 24 * 60), max_size=6, unique=True)))
    return [(as_time(a), as_time(b)) for a, b in zip(points[::2], points[1::2], strict=False)]


TEMPLATES: list[dict[int, Sequence[tuple[time, time]]]] = [
    dict.fromkeys(range(5), OFFICE),
    dict.fromkeys(range(5), LUNCH),
    # Civil service: shorter Friday, a 45-minute lunch.
    {
        **dict.fromkeys(range(4), ((time(9), time(13)), (time(13, 45), time(18)))),
        4: ((time(9), time(13)), (time(13, 45), time(16, 45))),
    },
    # Evening service until midnight, six days a week.
    dict.fromkeys(range(6), ((time(12), time(0)),)),
    # Night shift across midnight: the end of one date and the start of the next.
    dict.fromkeys(range(7), ((time(0), time(2)), (time(22), time(0)))),
    # A library: Tuesday to Saturday.
    dict.fromkeys(range(1, 6), ((time(10), time(19)),)),
]


WEEKLY = st.one_of(
    st.sampled_from(TEMPLATES),
    st.dictionaries(st.integers(0, 6), day_hours(), min_size=1, max_size=7),
)
NEARBY = st.integers(-5, 5)


@st.composite
def specs(draw: st.DrawFn) -> CalendarSpec:
    weekly = draw(WEEKLY)
    weekly_minutes = sum(len(minute_set(hours)) for hours in weekly.values())
    # Keeps the oracle's walks short: at least two working hours a week.
    assume(weekly_minutes >= 120)
    anchor = draw(st.sampled_from(ANCHORS))
    days_off = {anchor + timedelta(days=n) for n in draw(st.frozensets(NEARBY, max_size=2))}
    extra_working = {
        anchor + timedelta(days=n): hours
        for n, hours in draw(st.dictionaries(NEARBY, day_hours(), max_size=2)).items()
    }
    shortened = {anchor + timedelta(days=n) for n in draw(st.frozensets(NEARBY, max_size=1))}
    return CalendarSpec(
        timezone=draw(st.sampled_from(RUSSIAN_TIMEZONES)),
        weekly=weekly,
        use_production_calendar=draw(st.sampled_from([True, True, True, False])),
        extra_days_off=frozenset(days_off - set(extra_working)),
        extra_working_days=extra_working,
        shorten_pre_holiday_minutes=draw(st.sampled_from([60, 60, 0, 90])),
        extra_shortened_days=frozenset(shortened),
    )


def shifted(day: date, days: int) -> date:
    return day + timedelta(days=days)


ANCHOR_DAYS = st.builds(shifted, st.sampled_from(ANCHORS), st.integers(-3, 3))
MINUTE_OF_DAY = st.integers(0, 24 * 60 - 1)


@st.composite
def instants(draw: st.DrawFn, tz: str) -> datetime:
    """A minute-aligned UTC instant near an interesting local date."""
    day = draw(ANCHOR_DAYS)
    local = datetime.combine(day, time()) + draw(MINUTE_OF_DAY) * MINUTE
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------
# Properties against the oracle


@FAST
@given(data=st.data(), spec=specs())
def test_working_minutes_between_matches_the_oracle(
    data: st.DataObject, spec: CalendarSpec
) -> None:
    start = data.draw(instants(spec.timezone))
    end = start + data.draw(st.integers(-60, 4 * 24 * 60)) * MINUTE
    assert BusinessCalendar(spec).working_minutes_between(start, end) == Oracle(spec).between(
        start, end
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), spec=specs())
def test_long_spans_match_the_oracle(data: st.DataObject, spec: CalendarSpec) -> None:
    """Weeks and months apart (a clock overdue since long ago): whole days in between are
    summed in cached stretches, the edges clipped; the same minutes as day by day."""
    start = data.draw(instants(spec.timezone))
    end = start + data.draw(st.integers(5 * 24 * 60, 70 * 24 * 60)) * MINUTE
    calendar = BusinessCalendar(spec)
    expected = Oracle(spec).between(start, end)
    assert calendar.working_minutes_between(start, end) == expected
    assert calendar.working_minutes_between(start, end) == expected  # from the cache


@FAST
@given(data=st.data(), spec=specs())
def test_add_working_minutes_matches_the_oracle(data: st.DataObject, spec: CalendarSpec) -> None:
    start = data.draw(instants(spec.timezone))
    # At most two weeks' worth of this calendar's hours, to keep the oracle's walk short.
    weekly_minutes = sum(len(minute_set(hours)) for hours in spec.weekly.values())
    minutes = data.draw(st.integers(0, min(1500, 2 * weekly_minutes)))
    calendar = BusinessCalendar(spec)
    due = calendar.add_working_minutes(start, minutes)
    assert due == Oracle(spec).add(start, minutes)
    assert due.tzinfo is UTC
    assert calendar.working_minutes_between(start, due) == minutes


@FAST
@given(data=st.data(), spec=specs())
def test_instant_queries_match_the_oracle(data: st.DataObject, spec: CalendarSpec) -> None:
    at = data.draw(instants(spec.timezone))
    calendar, oracle = BusinessCalendar(spec), Oracle(spec)
    assert calendar.is_working_time(at) == oracle.is_working(at)
    assert calendar.next_working_instant(at) == oracle.next_instant(at)


@FAST
@given(data=st.data(), spec=specs())
def test_working_intervals_match_the_oracle(data: st.DataObject, spec: CalendarSpec) -> None:
    day = data.draw(ANCHOR_DAYS)
    tz = ZoneInfo(spec.timezone)
    minutes: set[int] = set()
    for start, end in BusinessCalendar(spec).working_intervals(day):
        assert start.tzinfo is UTC
        assert start < end
        for k in range((end - start) // MINUTE):
            local = (start + k * MINUTE).astimezone(tz)
            assert local.date() == day
            minutes.add(local.hour * 60 + local.minute)
    assert minutes == Oracle(spec).day_minutes(day)


# ------------------------------------------------------------------------------------
# Algebraic properties (no oracle, so longer spans and sub-minute instants)

seconds_instants = st.datetimes(
    min_value=datetime(2021, 12, 1), max_value=datetime(2028, 11, 30), timezones=st.just(UTC)
)


@FAST
@given(data=st.data(), spec=specs(), start=seconds_instants)
def test_adding_then_measuring_gives_the_same_minutes(
    data: st.DataObject, spec: CalendarSpec, start: datetime
) -> None:
    # Up to about half a year of this calendar's working time.
    weekly_minutes = sum(len(minute_set(hours)) for hours in spec.weekly.values())
    minutes = data.draw(st.integers(0, 26 * weekly_minutes))
    calendar = BusinessCalendar(spec)
    due = calendar.add_working_minutes(start, minutes)
    assert calendar.working_minutes_between(start, due) == minutes
    if minutes:
        # The deadline is the first instant with that much work done: not a moment later.
        assert calendar.is_working_time(due - timedelta(microseconds=1))


@FAST
@given(
    spec=specs(),
    start=seconds_instants,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
    minutes=st.integers(0, 5000),
    more=st.integers(0, 5000),
)
def test_deadlines_are_monotonic(
    spec: CalendarSpec, start: datetime, later: timedelta, minutes: int, more: int
) -> None:
    calendar = BusinessCalendar(spec)
    due = calendar.add_working_minutes(start, minutes)
    assert due >= start
    assert calendar.add_working_minutes(start, minutes + more) >= due
    assert calendar.add_working_minutes(start + later, minutes) >= due


@FAST
@given(
    spec=specs(),
    a=seconds_instants,
    ab=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    bc=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_measuring_is_additive(
    spec: CalendarSpec, a: datetime, ab: timedelta, bc: timedelta
) -> None:
    calendar = BusinessCalendar(spec)
    b, c = a + ab, a + ab + bc
    whole = calendar.working_time_between(a, c)
    assert whole == calendar.working_time_between(a, b) + calendar.working_time_between(b, c)
    assert whole <= c - a
    assert calendar.working_minutes_between(c, a) == 0


# ------------------------------------------------------------------------------------
# Worked examples (Moscow unless said otherwise)


def test_friday_evening_question_with_an_eight_hour_target_is_due_monday_afternoon() -> None:
    calendar = BusinessCalendar(DEFAULT)
    assert calendar.add_working_minutes(msk(2025, 10, 10, 17, 30), 8 * 60) == msk(
        2025, 10, 13, 16, 30
    )


def test_the_same_local_rule_holds_in_every_russian_zone() -> None:
    for tz in RUSSIAN_TIMEZONES:
        zone = ZoneInfo(tz)
        calendar = BusinessCalendar(default_spec(tz))
        due = calendar.add_working_minutes(datetime(2025, 10, 10, 17, 30, tzinfo=zone), 480)
        assert due == datetime(2025, 10, 13, 16, 30, tzinfo=zone), tz


def test_new_year_holidays_pause_the_clock() -> None:
    calendar = BusinessCalendar(five_days(LUNCH))
    # 31 Dec 2025 is a day off moved from 5 Jan; 1-8 Jan are holidays; 9 Jan is a day
    # off moved from 3 Jan. The next working day is Monday, 12 Jan 2026.
    assert calendar.add_working_minutes(msk(2025, 12, 30, 17), 8 * 60) == msk(2026, 1, 12, 17)
    assert not any(calendar.is_working_day(date(2026, 1, d)) for d in range(1, 12))
    assert calendar.next_working_instant(msk(2025, 12, 30, 18)) == msk(2026, 1, 12, 9)
    assert calendar.working_minutes_between(msk(2025, 12, 26), msk(2026, 1, 13)) == 4 * 480


def test_the_day_before_8_march_is_an_hour_shorter() -> None:
    calendar = BusinessCalendar(five_days(LUNCH))
    intervals = calendar.working_intervals(date(2025, 3, 7))
    assert intervals == [
        (msk(2025, 3, 7, 9), msk(2025, 3, 7, 13)),
        (msk(2025, 3, 7, 14), msk(2025, 3, 7, 17)),
    ]
    # Half an hour left on Friday, the rest after the weekend and the holiday.
    assert calendar.add_working_minutes(msk(2025, 3, 7, 16, 30), 60) == msk(2025, 3, 10, 9, 30)
    assert not calendar.is_working_time(msk(2025, 3, 7, 17, 15))


def test_working_saturdays_of_2024() -> None:
    calendar = BusinessCalendar(five_days(OFFICE))
    # 27 Apr: worked for Monday 29 Apr, a full day; 29-30 Apr and 1 May are off.
    assert calendar.working_intervals(date(2024, 4, 27)) == [
        (msk(2024, 4, 27, 9), msk(2024, 4, 27, 18))
    ]
    assert not calendar.is_working_day(date(2024, 4, 29))
    assert not calendar.is_working_day(date(2024, 4, 30))
    # 2 Nov: worked for 30 Apr and shortened (4 Nov is a holiday), although the next
    # day is a Sunday; a "day before a holiday" rule would miss it.
    assert calendar.working_intervals(date(2024, 11, 2)) == [
        (msk(2024, 11, 2, 9), msk(2024, 11, 2, 17))
    ]
    # 28 Dec: worked for 30 Dec, a full day before the New Year break.
    assert calendar.working_intervals(date(2024, 12, 28)) == [
        (msk(2024, 12, 28, 9), msk(2024, 12, 28, 18))
    ]
    assert calendar.add_working_minutes(msk(2024, 12, 27, 17), 120) == msk(2024, 12, 28, 10)


def test_a_working_saturday_takes_the_hours_of_the_weekday_it_replaces() -> None:
    # 1 Nov 2025 (Sat) is worked for Monday 3 Nov, and shortened.
    spec = CalendarSpec(
        "Europe/Moscow",
        {0: ((time(8), time(17)),), **dict.fromkeys(range(1, 5), OFFICE)},
    )
    calendar = BusinessCalendar(spec)
    assert calendar.working_intervals(date(2025, 11, 1)) == [
        (msk(2025, 11, 1, 8), msk(2025, 11, 1, 16))
    ]
    # An institution open on Saturdays anyway keeps its own Saturday hours.
    library = BusinessCalendar(CalendarSpec("Europe/Moscow", TEMPLATES[5]))
    assert library.working_intervals(date(2025, 11, 1)) == [
        (msk(2025, 11, 1, 10), msk(2025, 11, 1, 18))
    ]


def test_years_outside_the_data_fall_back_to_the_package_and_the_simple_rule() -> None:
    calendar = BusinessCalendar(five_days(OFFICE))
    # 2028: 8 Mar is a Wednesday, so Tuesday 7 Mar is shortened by the rule.
    assert calendar.working_intervals(date(2028, 3, 7)) == [
        (msk(2028, 3, 7, 9), msk(2028, 3, 7, 17))
    ]
    assert not calendar.is_working_day(date(2028, 3, 8))
    # 2021 is not encoded: the rule misses the shortened working Saturday, 20 Feb.
    assert calendar.working_intervals(date(2021, 2, 20)) == [
        (msk(2021, 2, 20, 9), msk(2021, 2, 20, 18))
    ]


def test_without_the_production_calendar_only_the_weekly_hours_count() -> None:
    spec = CalendarSpec("Europe/Moscow", dict.fromkeys(range(5), OFFICE), False)
    calendar = BusinessCalendar(spec)
    assert calendar.is_working_day(date(2026, 1, 5))
    assert not calendar.is_working_day(date(2024, 4, 27))
    assert calendar.working_intervals(date(2025, 3, 7))[0][1] == msk(2025, 3, 7, 18)


def test_local_overrides() -> None:
    spec = CalendarSpec(
        "Europe/Moscow",
        dict.fromkeys(range(5), OFFICE),
        extra_days_off=frozenset({date(2025, 6, 6)}),  # a regional holiday
        extra_working_days={date(2025, 6, 8): ((time(10), time(14)),)},  # a Sunday
        extra_shortened_days=frozenset({date(2025, 6, 5)}),
        shorten_pre_holiday_minutes=120,
    )
    calendar = BusinessCalendar(spec)
    assert not calendar.is_working_day(date(2025, 6, 6))
    assert calendar.working_intervals(date(2025, 6, 5))[-1][1] == msk(2025, 6, 5, 16)
    assert calendar.working_intervals(date(2025, 6, 8)) == [
        (msk(2025, 6, 8, 10), msk(2025, 6, 8, 14))
    ]
    assert calendar.add_working_minutes(msk(2025, 6, 5, 15), 120) == msk(2025, 6, 8, 11)
    # Working hours on a public holiday, e.g. a clinic on duty.
    duty = CalendarSpec("Europe/Moscow", {}, extra_working_days={date(2026, 1, 2): OFFICE})
    assert BusinessCalendar(duty).is_working_day(date(2026, 1, 2))


def test_an_interval_until_midnight_joins_the_next_day() -> None:
    calendar = BusinessCalendar(CalendarSpec("Asia/Kamchatka", TEMPLATES[4], False))
    zone = ZoneInfo("Asia/Kamchatka")
    start = datetime(2026, 3, 3, 23, 30, tzinfo=zone)
    assert calendar.add_working_minutes(start, 60) == datetime(2026, 3, 4, 0, 30, tzinfo=zone)
    assert calendar.working_minutes_between(start, start + timedelta(hours=3)) == 150
    assert calendar.is_working_time(datetime(2026, 3, 4, 0, 0, tzinfo=zone))
    assert not calendar.is_working_time(datetime(2026, 3, 4, 2, 0, tzinfo=zone))


def test_zero_minutes_returns_the_start_even_outside_working_hours() -> None:
    calendar = BusinessCalendar(DEFAULT)
    sunday = msk(2025, 10, 12, 3, 15, 7)
    assert calendar.add_working_minutes(sunday, 0) == sunday
    assert calendar.add_working_minutes(sunday, 1) == msk(2025, 10, 13, 9, 1)


def test_sub_minute_precision() -> None:
    calendar = BusinessCalendar(DEFAULT)
    start = msk(2025, 10, 10, 17, 59, 30, 250)
    end = msk(2025, 10, 13, 9, 0, 15)
    worked = timedelta(seconds=44, microseconds=999750)
    assert calendar.working_time_between(start, end) == worked
    assert calendar.working_minutes_between(start, end) == worked / MINUTE
    assert calendar.add_working_minutes(start, 1) == msk(2025, 10, 13, 9, 0, 30, 250)


def test_a_deadline_at_the_end_of_the_day_stays_on_that_day() -> None:
    calendar = BusinessCalendar(DEFAULT)
    assert calendar.add_working_minutes(msk(2025, 10, 10, 17), 60) == msk(2025, 10, 10, 18)


def test_long_targets_are_fast_and_exact() -> None:
    calendar = BusinessCalendar(five_days(LUNCH))
    start = msk(2022, 1, 1)
    # Every working hour of 2022-2027 as recorded in the data.
    hours = sum(year.hours_40h for year in PRODUCTION_YEARS.values())
    due = calendar.add_working_minutes(start, hours * 60)
    assert due == msk(2027, 12, 30, 18)
    assert calendar.working_minutes_between(start, msk(2028, 1, 1)) == hours * 60


def test_bad_input_is_rejected() -> None:
    calendar = BusinessCalendar(DEFAULT)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_minutes(datetime(2025, 1, 1), 10)
    with pytest.raises(ValueError, match="negative"):
        calendar.add_working_minutes(msk(2025, 1, 1), -1)
    with pytest.raises(ValueError, match="no working time"):
        BusinessCalendar(CalendarSpec("Europe/Moscow", {})).add_working_minutes(msk(2025, 1, 1), 1)


def test_clock_changes_resolve_to_instants_outside_russia() -> None:
    # Berlin skips 02:00-03:00 on 30 Mar 2025; a shift starting at 02:30 starts at 03:00.
    spec = CalendarSpec("Europe/Berlin", {6: ((time(2, 30), time(5)),)}, False)
    calendar = BusinessCalendar(spec)
    berlin = ZoneInfo("Europe/Berlin")
    assert calendar.working_intervals(date(2025, 3, 30)) == [
        (datetime(2025, 3, 30, 3, tzinfo=berlin), datetime(2025, 3, 30, 5, tzinfo=berlin))
    ]


# ------------------------------------------------------------------------------------
# The production calendar data against official totals and the holidays package


@pytest.mark.parametrize("year", sorted(PRODUCTION_YEARS))
def test_the_data_gives_the_official_norms(year: int) -> None:
    calendar = BusinessCalendar(five_days(LUNCH))
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(366)]
    days = [day for day in days if day.year == year]
    working = [day for day in days if calendar.is_working_day(day)]
    minutes = calendar.working_minutes_between(msk(year, 1, 1), msk(year + 1, 1, 1))
    assert len(working) == PRODUCTION_YEARS[year].working_days
    assert minutes == PRODUCTION_YEARS[year].hours_40h * 60


@pytest.mark.parametrize("year", sorted(PRODUCTION_YEARS))
def test_the_data_agrees_with_the_holidays_package(year: int) -> None:
    data = PRODUCTION_YEARS[year]
    package = ru_holidays(year)
    assert {day for day in package.weekend_workdays if day.year == year} == set(
        data.working_weekends
    )
    for worked, off in data.working_weekends.items():
        assert worked.weekday() >= 5
        assert off.weekday() < 5
        assert off in package
    for day in data.shortened_days:
        assert day.year == year
        assert day not in package
        assert day.weekday() < 5 or day in data.working_weekends
        # A holiday of art. 112 follows within the next few (non-working) days.
        following = (day + timedelta(days=n) for n in (1, 2, 3))
        assert any((d.month, d.day) in LABOUR_CODE_HOLIDAYS for d in following)
