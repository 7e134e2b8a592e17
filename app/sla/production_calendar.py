"""The Russian production calendar (производственный календарь) as data.

The `holidays` package (country "RU") knows the non-working days: the holidays of
art. 112 of the Labour Code, the days off transferred by the yearly government
decree, and the days off it lists as "observed". It also lists the weekend days that
the decree turns into working days (`weekend_workdays`), but it has no shortened
pre-holiday days (art. 95 of the Labour Code: the working day immediately before a
non-working holiday is one hour shorter). A "the working day before a holiday" rule
gets some of them wrong: a working Saturday can be a shortened day even though the
day after it is a Sunday (2 Nov 2024, 1 Nov 2025), while another working Saturday
before a run of days off is a full day (27 Apr and 28 Dec 2024). So for every year
below the shortened days and the working weekend days are encoded from the official
calendar.

Sources, per year:
- the government decree «О переносе выходных дней в <year> году» (the document the
  `holidays` package cites, consultant.ru `cons_doc_LAW_<id>` below);
- the production calendar for a five-day week published by ConsultantPlus,
  https://www.consultant.ru/law/ref/calendar/proizvodstvennye/<year>/ ;
- the machine-readable copy of the same calendar, https://github.com/xmlcalendar/data
  (`ru/<year>/calendar.xml`: `t="2"` is a shortened day, `t="3"` a working weekend).
Each year was cross-checked: the five-day week with 8-hour days has exactly the
official number of working days and the official 40-hour-week norm of hours
(tests/sla/test_calendar.py recomputes both).

Years before 2022 are not encoded on purpose: 2020 and 2021 also had "non-working
days" by presidential decree (COVID-19) that are not in the production calendar, so
a plain encoding would mislead. Outside the encoded years the calendar falls back to
the `holidays` package and the simple rule (see `app.sla.calendar`). When the decree
for a new year is published (usually in August-October of the year before), add the
year here and bump the `holidays` package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ProductionYear:
    """What the `holidays` package does not say about one year of the calendar."""

    year: int
    # Working days one hour shorter than usual (pre-holiday days).
    shortened_days: frozenset[date]
    # A weekend day that the decree made a working day -> the weekday that became a
    # day off in exchange (its hours are the ones worked on the weekend day).
    working_weekends: Mapping[date, date]
    # The official norms for a five-day 40-hour week, used only to verify the data.
    working_days: int
    hours_40h: int
    source: str


def _year(
    year: int,
    *,
    shortened: tuple[tuple[int, int], ...],
    working_weekends: tuple[tuple[tuple[int, int], tuple[int, int]], ...],
    working_days: int,
    hours_40h: int,
    source: str,
) -> ProductionYear:
    return ProductionYear(
        year=year,
        shortened_days=frozenset(date(year, m, d) for m, d in shortened),
        working_weekends=MappingProxyType(
            {date(year, *worked): date(year, *off) for worked, off in working_weekends}
        ),
        working_days=working_days,
        hours_40h=hours_40h,
        source=source,
    )


_CONSULTANT = "https://www.consultant.ru/document/cons_doc_LAW_{}/"
_CALENDAR = "https://www.consultant.ru/law/ref/calendar/proizvodstvennye/{}/"

PRODUCTION_YEARS: Mapping[int, ProductionYear] = MappingProxyType(
    {
        py.year: py
        for py in (
            _year(
                2022,
                # 5 Mar (Sat) is a working day for 7 Mar (Mon); shortened before 8 Mar.
                shortened=((2, 22), (3, 5), (11, 3)),
                working_weekends=(((3, 5), (3, 7)),),
                working_days=247,
                hours_40h=1973,
                source=_CONSULTANT.format(395538) + " ; " + _CALENDAR.format(2022),
            ),
            _year(
                2023,
                shortened=((2, 22), (3, 7), (11, 3)),
                working_weekends=(),
                working_days=247,
                hours_40h=1973,
                source=_CONSULTANT.format(425407) + " ; " + _CALENDAR.format(2023),
            ),
            _year(
                2024,
                # 27 Apr and 28 Dec (Sat) are full working days, 2 Nov (Sat) is shortened.
                shortened=((2, 22), (3, 7), (5, 8), (6, 11), (11, 2)),
                working_weekends=(
                    ((4, 27), (4, 29)),
                    ((11, 2), (4, 30)),
                    ((12, 28), (12, 30)),
                ),
                working_days=248,
                hours_40h=1979,
                source=_CONSULTANT.format(455140) + " ; " + _CALENDAR.format(2024),
            ),
            _year(
                2025,
                # 1 Nov (Sat) is a shortened working day for 3 Nov (Mon).
                shortened=((3, 7), (4, 30), (6, 11), (11, 1)),
                working_weekends=(((11, 1), (11, 3)),),
                working_days=247,
                hours_40h=1972,
                source=_CONSULTANT.format(481586) + " ; " + _CALENDAR.format(2025),
            ),
            _year(
                2026,
                shortened=((4, 30), (5, 8), (6, 11), (11, 3)),
                working_weekends=(),
                working_days=247,
                hours_40h=1972,
                source=_CONSULTANT.format(515170) + " ; " + _CALENDAR.format(2026),
            ),
            _year(
                2027,
                # 20 Feb (Sat) is a shortened working day for 22 Feb (Mon). The layout
                # of 2027 repeats 2021 (same weekdays, same transfers, same shortened
                # days, 247 days / 1972 h); the totals here are recomputed from the
                # decree, not copied from a published norm.
                shortened=((2, 20), (4, 30), (6, 11), (11, 3)),
                working_weekends=(((2, 20), (2, 22)),),
                working_days=247,
                hours_40h=1972,
                source=_CONSULTANT.format(544706) + " ; " + _CALENDAR.format(2027),
            ),
        )
    }
)

# Non-working holidays of art. 112 of the Labour Code (as amended in 2012, in force
# since 2013): 1-6 and 8 Jan (New Year holidays), 7 Jan, 23 Feb, 8 Mar, 1 May,
# 9 May, 12 Jun, 4 Nov. Only these make the day before them shortened; a day off
# transferred by the decree does not.
STATUTORY_HOLIDAYS: frozenset[tuple[int, int]] = frozenset(
    {(1, day) for day in range(1, 9)} | {(2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)}
)


def is_statutory_holiday(day: date) -> bool:
    return (day.month, day.day) in STATUTORY_HOLIDAYS
