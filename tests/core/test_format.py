"""Russian formatting: plurals by Babel's rules, no-break spaces, durations, zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core import format as fmt

NBSP = "\u00a0"
NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("n", "word"),
    [
        (0, "вопросов"),
        (1, "вопрос"),
        (2, "вопроса"),
        (4, "вопроса"),
        (5, "вопросов"),
        (11, "вопросов"),
        (12, "вопросов"),
        (21, "вопрос"),
        (22, "вопроса"),
        (111, "вопросов"),
        (1001, "вопрос"),
    ],
)
def test_plural_forms_follow_russian_rules(n: int, word: str) -> None:
    assert fmt.plural(n, "вопрос", "вопроса", "вопросов") == word


def test_hours_plural_and_count_with_grouping() -> None:
    assert [fmt.plural(n, "час", "часа", "часов") for n in (1, 3, 11)] == ["час", "часа", "часов"]
    assert fmt.count(12345, "вопрос", "вопроса", "вопросов") == f"12{NBSP}345{NBSP}вопросов"
    assert fmt.count(1.5, "час", "часа", "часов") == f"1,5{NBSP}часа"


def test_numbers_group_with_no_break_space() -> None:
    assert fmt.number(12345.5) == f"12{NBSP}345,5"
    assert fmt.number(None) == "—"


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (135, f"2{NBSP}ч 15{NBSP}мин"),
        (45, f"45{NBSP}мин"),
        (120, f"2{NBSP}ч"),
        (65.4, f"1{NBSP}ч 5{NBSP}мин"),
        (0.3, "меньше минуты"),
        (-90, f"1{NBSP}ч 30{NBSP}мин"),
        (None, "—"),
    ],
)
def test_durations_keep_two_units(minutes: float | None, text: str) -> None:
    assert fmt.duration(minutes) == text


def test_wall_clock_durations_may_count_days() -> None:
    assert fmt.duration(53 * 60 + 10, days=True) == f"2{NBSP}дня 5{NBSP}ч"
    assert fmt.duration(24 * 60, days=True) == f"1{NBSP}день"
    assert fmt.duration(53 * 60, days=False) == f"53{NBSP}ч"


def test_datetime_in_the_territory_zone_without_the_current_year() -> None:
    at = datetime(2026, 12, 1, 9, 5, tzinfo=UTC)  # 14:05 in Yekaterinburg (UTC+5)
    assert fmt.datetime_text(at, "Asia/Yekaterinburg", now=NOW) == f"1{NBSP}декабря, 14:05"
    assert fmt.datetime_text(at, "Asia/Yekaterinburg", now=NOW, short=True) == (
        f"вт, 1{NBSP}дек., 14:05"
    )


def test_datetime_of_another_year_shows_it() -> None:
    at = datetime(2025, 12, 1, 9, 5, tzinfo=UTC)
    assert fmt.datetime_text(at, "Asia/Yekaterinburg", now=NOW) == f"1{NBSP}декабря 2025, 14:05"


def test_zone_shown_only_when_the_viewer_is_elsewhere() -> None:
    at = datetime(2026, 12, 1, 9, 5, tzinfo=UTC)
    here = fmt.datetime_text(at, "Asia/Yekaterinburg", viewer_tz="Asia/Yekaterinburg", now=NOW)
    away = fmt.datetime_text(at, "Asia/Yekaterinburg", viewer_tz="Europe/Moscow", now=NOW)
    assert "МСК" not in here
    assert away.endswith("(МСК+2)")


@pytest.mark.parametrize(
    ("tz", "label"),
    [
        ("Europe/Moscow", "МСК"),
        ("Asia/Yekaterinburg", "МСК+2"),
        ("Europe/Kaliningrad", "МСК\u22121"),
        ("Asia/Kamchatka", "МСК+9"),
    ],
)
def test_zone_labels_as_the_law_names_them(tz: str, label: str) -> None:
    assert fmt.zone_label(tz, NOW) == label


def test_date_and_iso() -> None:
    at = datetime(2026, 5, 9, 20, 30, tzinfo=UTC)  # 10 May in Kamchatka
    assert fmt.date_text(at, "Asia/Kamchatka", now=NOW) == f"10{NBSP}мая"
    assert fmt.iso(at) == "2026-05-09T20:30:00+00:00"
    assert fmt.datetime_text(None) == "—"


def test_platform_codes_are_never_shown_raw() -> None:
    names = [fmt.platform_name(code) for code in ("vk", "telegram", "ok", "max", "generic", "x")]
    assert names == [
        "ВКонтакте",
        "Telegram",
        "Одноклассники",
        "MAX",
        "Другая система",
        "Другая система",
    ]
