"""The one place where numbers, dates, durations and plurals become Russian text.

Babel (locale ``ru``) gives month and weekday names, number grouping and the plural
rules; what it does not do the way Russian typography wants is done here: a no-break
space (U+00A0) between a number and its unit and between day and month, durations
with two units («2 ч 15 мин»: Babel rounds to one), and time zones as «МСК+2» (Babel's
zone names are wordy or wrong). Every page formats through these functions, mostly
as Jinja filters registered in `app.core.web`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_decimal

NBSP = "\u00a0"
MINUS = "\u2212"
DEFAULT_TIMEZONE = "Europe/Moscow"
_LOCALE = Locale.parse("ru")
_MSK = timedelta(hours=3)

PLATFORM_NAMES: dict[str, str] = {
    "vk": "ВКонтакте",
    "telegram": "Telegram",
    "ok": "Одноклассники",
    "max": "MAX",
    "generic": "Другая система",
}


# --- numbers and plurals ----------------------------------------------------------


def number(value: float | int | None) -> str:
    """12345.5 -> «12 345,5» (Babel groups with a no-break space)."""
    if value is None:
        return "—"
    return format_decimal(value, locale=_LOCALE)


def plural(n: float | int, one: str, few: str, many: str) -> str:
    """The noun form for `n`: plural(1, "вопрос", "вопроса", "вопросов") -> «вопрос»,
    2 -> «вопроса», 5 and 11 -> «вопросов»; a fraction takes the `few` form («1,5 часа»)."""
    form = _LOCALE.plural_form(n)
    if form == "one":
        return one
    if form in ("few", "other"):
        # CLDR's "other" in Russian is the fractional form: 1,5 часа, 2,5 часа.
        return few
    return many


def count(n: float | int, one: str, few: str, many: str) -> str:
    """A number with its noun: «1 вопрос», «12 345 вопросов» (no-break space between)."""
    return f"{number(n)}{NBSP}{plural(n, one, few, many)}"


# --- durations --------------------------------------------------------------------


def duration(minutes: float | None, *, days: bool = False) -> str:
    """Minutes as «2 ч 15 мин», «45 мин», «меньше минуты», rounded to the minute.

    Working time stays in hours (a working day is not 24 hours); wall-clock time may be
    given in days with `days=True`: «2 дня 3 ч».
    """
    if minutes is None:
        return "—"
    total = round(abs(minutes))
    if total == 0:
        return "меньше минуты"
    hours, mins = divmod(total, 60)
    parts: list[str] = []
    if days and hours >= 24:
        d, hours = divmod(hours, 24)
        parts.append(count(d, "день", "дня", "дней"))
        if hours:
            parts.append(f"{hours}{NBSP}ч")
        return " ".join(parts)
    if hours:
        parts.append(f"{number(hours)}{NBSP}ч")
    if mins:
        parts.append(f"{mins}{NBSP}мин")
    return " ".join(parts)


# --- dates and times --------------------------------------------------------------


@lru_cache(maxsize=128)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ValueError, KeyError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def zone_label(tz: str | None, at: datetime | None = None) -> str:
    """The zone as the law on time names it: «МСК», «МСК+2», «МСК−1»."""
    moment = at or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.astimezone(_zone(tz)).utcoffset() or timedelta(0)
    delta = offset - _MSK
    if not delta:
        return "МСК"
    sign = "+" if delta > timedelta(0) else MINUS
    hours, rest = divmod(abs(delta), timedelta(hours=1))
    minutes = rest // timedelta(minutes=1)
    return f"МСК{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _same_offset(a: str | None, b: str | None, at: datetime) -> bool:
    return at.astimezone(_zone(a)).utcoffset() == at.astimezone(_zone(b)).utcoffset()


def _nbsp_day_month(text: str) -> str:
    # «1 декабря» and «1 дек.»: the day never stays alone at the end of a line.
    day, sep, rest = text.partition(" ")
    return f"{day}{NBSP}{rest}" if sep and day.isdigit() else text


def datetime_text(
    value: datetime | None,
    tz: str | None = None,
    *,
    viewer_tz: str | None = None,
    now: datetime | None = None,
    short: bool = False,
) -> str:
    """An instant in the zone `tz` (a territory's): «1 декабря, 14:05», or with `short`
    «вт, 1 дек., 14:05»; the year only when it is not the current one; « (МСК+2)» only
    when `viewer_tz` is given and its offset differs from `tz`'s at that instant."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_zone(tz))
    current = (now or datetime.now(UTC)).astimezone(_zone(tz)).year
    year = "" if local.year == current else " y"
    if short:
        date = _babel_datetime(local, f"d MMM{year}", locale=_LOCALE)
        weekday = _babel_datetime(local, "EEE", locale=_LOCALE)
        text = f"{weekday}, {_nbsp_day_month(date)}, {local:%H:%M}"
    else:
        date = _babel_datetime(local, f"d MMMM{year}", locale=_LOCALE)
        text = f"{_nbsp_day_month(date)}, {local:%H:%M}"
    if viewer_tz and not _same_offset(tz, viewer_tz, value):
        text += f" ({zone_label(tz, value)})"
    return text


def date_text(value: datetime | None, tz: str | None = None, *, now: datetime | None = None) -> str:
    """A date alone: «1 декабря» (with the year when it is not the current one)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_zone(tz))
    current = (now or datetime.now(UTC)).astimezone(_zone(tz)).year
    pattern = "d MMMM" if local.year == current else "d MMMM y"
    return _nbsp_day_month(_babel_datetime(local, pattern, locale=_LOCALE))


def iso(value: datetime | None) -> str:
    """The `datetime` attribute of a `<time>` element (UTC, ISO 8601)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


# --- names ------------------------------------------------------------------------


def platform_name(code: str | None) -> str:
    """«ВКонтакте», «Telegram», «Одноклассники», «MAX»; a platform code is never shown raw."""
    if not code:
        return "—"
    return PLATFORM_NAMES.get(str(code), "Другая система")
