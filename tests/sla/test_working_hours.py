"""Working hours as a value: validation, equality, the stored form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time

import pytest

from app.sla.working_hours import CalendarSpec, default_spec, parse_hours

OFFICE = ((time(9), time(18)),)
LUNCH = ((time(9), time(13)), (time(14), time(18)))


def five_days(hours: Sequence[tuple[time, time]], tz: str = "Europe/Moscow") -> CalendarSpec:
    return CalendarSpec(tz, dict.fromkeys(range(5), hours))


def test_bad_working_hours_are_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        default_spec("Europe/Atlantis")
    with pytest.raises(ValueError, match="overlap"):
        CalendarSpec("Europe/Moscow", {0: ((time(9), time(13)), (time(12), time(18)))})
    with pytest.raises(ValueError, match="does not end after"):
        CalendarSpec("Europe/Moscow", {0: ((time(18), time(9)),)})
    with pytest.raises(ValueError, match="weekday"):
        CalendarSpec("Europe/Moscow", {7: OFFICE})
    with pytest.raises(ValueError, match="both off and working"):
        CalendarSpec(
            "Europe/Moscow",
            {},
            extra_days_off=frozenset({date(2025, 1, 1)}),
            extra_working_days={date(2025, 1, 1): OFFICE},
        )


def test_specs_are_hashable_values() -> None:
    a = five_days(LUNCH)
    b = CalendarSpec("Europe/Moscow", {d: list(LUNCH) for d in range(5)})
    assert hash(a) == hash(b)
    assert len({a, five_days(LUNCH)}) == 1


def test_parse_hours_reads_the_stored_form() -> None:
    assert parse_hours([["09:00", "13:00"], ["14:00", "24:00"]]) == [
        (time(9), time(13)),
        (time(14), time(0)),
    ]
