"""The questions behind a figure: each figure of `figures`, `backlog` and the dashboard
maps to a filter of the questions list (`app.questions.queries`), so its number and its
list can never disagree. The URL holds the filter (`params`); the list page and the
exports (`app.reports.question_views`) read it back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.reports.sources import AGE_DAYS

# The period's figures (questions created in the period), as list filters.
PERIOD_FIGURES: dict[str, dict[str, str]] = {
    "questions": {},
    "answered": {"source": "any"},
    "answered_otklik": {"source": "otklik"},
    "answered_native": {"source": "native"},
    "on_time": {"first_response": "met"},
    "late": {"first_response": "late"},
    "breached": {"breached": "1"},
    "open": {"status": "open"},
    "dismissed": {"status": "dismissed"},
}
# The backlog now (open questions that need an answer, whenever they came).
NOW_FIGURES = ("open_now", "overdue_now", "warning_now", *[f"age_{k}" for k, _ in AGE_DAYS])

TITLES: dict[str, str] = {
    "questions": "Все вопросы периода",
    "answered": "Вопросы с ответом",
    "answered_otklik": "Ответы через Отклик",
    "answered_native": "Ответы на платформе",
    "on_time": "Первый ответ в срок",
    "late": "Первый ответ с опозданием или без ответа после срока",
    "breached": "С нарушением срока",
    "open": "Открытые вопросы периода",
    "dismissed": "Снятые вопросы",
    "open_now": "Открыты сейчас",
    "overdue_now": "Просрочены сейчас",
    "warning_now": "Скоро срок",
    "age_under_1d": "Открыты меньше суток",
    "age_1d_3d": "Открыты 1–3 дня",
    "age_3d_7d": "Открыты 3–7 дней",
    "age_over_7d": "Открыты больше 7 дней",
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def params(
    figure: str,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: str | None = None,
    page_id: int | None = None,
    classification: str | None = None,
) -> dict[str, str]:
    """The list filter (query parameters) of the questions behind `figure`."""
    out: dict[str, str] = {"figure": figure}
    if territory_id is not None:
        out["territory_id"] = str(territory_id)
    if institution_id is not None:
        out["institution_id"] = str(institution_id)
    if sector:
        out["sector"] = sector
    if page_id is not None:
        out["page_id"] = str(page_id)
    if classification:
        out["classification"] = classification
    if figure in PERIOD_FIGURES:
        out.update(**{"from": _iso(start), "to": _iso(end)}, **PERIOD_FIGURES[figure])
    return out


def age_range(bucket: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The creation instants [from, to) of the open questions of an age bucket."""
    newer: float | None = None
    for name, days in AGE_DAYS:
        if name == bucket:
            since = None if days == float("inf") else now - timedelta(days=days)
            # The bucket holds questions at most `newer` days old, that instant included.
            until = None if newer is None else now - timedelta(days=newer, microseconds=-1)
            return since, until
        newer = days
    return None, None


def describe(query: Mapping[str, Any]) -> str:
    return TITLES.get(str(query.get("figure", "questions")), TITLES["questions"])
