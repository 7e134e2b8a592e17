"""One figure, one definition: the hand-built region's figures (known by hand: an even
count of answers, a transfer, a dismissal) are the same in the dashboard's JSON, the
SLA report, its CSV and its XLSX, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from app.core.config import Settings
from app.reports import percentiles
from app.reports.figures import percentile
from tests.answering.web import sign_in
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers
from tests.reports import world
from tests.reports.world import PERIOD

# What the world's module docstring works out by hand.
KNOWN = {
    "questions": 7,
    "answered": 4,
    "on_time": 3,
    "late": 2,
    "breached": 2,
    "dismissed": 1,
    "open": 2,
    "on_time_rate": 0.6,
    "dismissal_share": 0.1429,
    "median_first_response_working_minutes": 360.0,
    "p90_first_response_working_minutes": 924.0,
    "median_first_response_wall_minutes": 360.0,
    "p90_first_response_wall_minutes": 2184.0,
    "transferred_out": 1,
}
CSV_HEADERS = {
    "questions": "Вопросов",
    "answered": "С ответом",
    "on_time": "Ответ в срок",
    "dismissed": "Без ответа (снято)",
    "on_time_rate": "Доля в срок, %",
    "median_first_response_working_minutes": "Медиана первого ответа, раб. мин",
    "p90_first_response_working_minutes": "90-й процентиль, раб. мин",
    "p90_first_response_wall_minutes": "90-й процентиль, мин",
}


def _csv_value(text: str, field: str) -> float:
    value = float(text.replace(",", "."))
    return round(value / 100, 4) if field == "on_time_rate" else value


def test_figures_agree_everywhere(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    headers = auth_headers(session, w["boss"])
    scope = {"territory_id": w["region"].id}

    dash = client.get(
        "/api/v1/reports/dashboard",
        params={"period": "custom", **PERIOD, **scope},
        headers=headers,
    )
    assert dash.status_code == 200, dash.text
    headline = dash.json()["headline"]
    assert {k: headline[k] for k in KNOWN} == KNOWN

    api = client.get(
        "/api/v1/reports/sla", params={**PERIOD, **scope, "group_by": "total"}, headers=headers
    )
    assert api.status_code == 200, api.text
    (total,) = api.json()["items"]
    assert {k: total[k] for k in KNOWN} == KNOWN

    exported = client.get(
        "/api/v1/reports/sla.csv", params={**PERIOD, **scope, "group_by": "total"}, headers=headers
    )
    (line,) = csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";")
    for field, header in CSV_HEADERS.items():
        assert _csv_value(line[header], field) == KNOWN[field], field

    book = client.get(
        "/api/v1/reports/sla.xlsx", params={**PERIOD, **scope, "group_by": "total"}, headers=headers
    )
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    cells = dict(zip(rows[2], rows[3], strict=True))
    for field, header in CSV_HEADERS.items():
        assert cells[header] == KNOWN[field], field

    # The ranking of the dashboard is the report by territory, worst first.
    ranking = [(r["name"], r["on_time_rate"], r["questions"]) for r in dash.json()["ranking"]]
    by_territory = client.get(
        "/api/v1/reports/sla",
        params={**PERIOD, **scope, "group_by": "territory"},
        headers=headers,
    ).json()["items"]
    assert ranking == [("Город А", 0.5, 5), ("Город Б", 1.0, 2)]
    assert sorted(ranking) == sorted(
        (r["name"], r["on_time_rate"], r["questions"]) for r in by_territory
    )
    # The trend's days add up to the headline.
    trend = dash.json()["trend"]
    assert dash.json()["trend_by"] == "day"
    assert sum(p["questions"] for p in trend) == KNOWN["questions"]
    # Every day of March has its row (quiet days as zeros, so the chart runs evenly).
    assert [p["key"] for p in trend] == [f"2026-03-{d:02d}" for d in range(1, 32)]
    assert [(p["key"], p["on_time"], p["late"]) for p in trend if p["questions"]] == [
        ("2026-03-10", 3, 2)
    ]


def test_dashboard_compares_with_the_previous_period(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    response = client.get(
        "/api/v1/reports/dashboard",
        params={"period": "custom", "from": "2026-03-01", "to": "2026-03-31"},
        headers=auth_headers(session, w["boss"]),
    ).json()
    # 31 days before 1 March: February's one question, never answered, breached.
    assert response["previous_start"].startswith("2026-01-29T")
    previous = response["headline"]["previous"]
    assert (previous["questions"], previous["on_time"], previous["late"]) == (1, 0, 1)
    assert previous["on_time_rate"] == 0.0
    now = response["now"]
    # Open now: the unanswered school question and February's one, both overdue.
    assert (now["open"], now["overdue"]) == (2, 2)
    assert now["by_age"] == {"under_1d": 0, "1d_3d": 0, "3d_7d": 0, "over_7d": 2}
    assert [c["name"] for c in response["breadcrumbs"]] == ["Область"]
    assert response["ranking_by"] == "territory"
    silent = {p["institution"] for p in response["silent_pages"]}
    # Nothing came for over 7 days by 20 March: every page is silent (the
    # administration has none: its question was moved to it).
    assert silent == {"Школа", "Больница"}
    assert response["silent_total"] == len(response["silent_pages"])


@pytest.mark.parametrize(
    "values",
    [
        [5.0],
        [1.0, 2.0],
        [3.0, 1.0, 2.0],
        [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0],
    ],
)
def test_database_percentiles_match_interpolation(session: Session, values: list[float]) -> None:
    rows = " UNION ALL ".join(f"SELECT 'g' AS key, {v} AS m" for v in values)
    source = sa.text(rows).columns(sa.column("key"), sa.column("m")).subquery()
    found = percentiles.percentiles(session, source, ["m"])
    assert found["g"]["m"] == pytest.approx([percentile(values, 0.5), percentile(values, 0.9)])


def _page_figures(html: str) -> dict[str, list[str]]:
    """Each headline figure's label and the exact values its elements carry."""
    found: dict[str, list[str]] = {}
    for block in re.findall(r'<li class="figure[^"]*">(.*?)</li>', html, re.S):
        label = re.search(r'figure__label">([^<]+)<', block)
        assert label, block
        found[label.group(1)] = re.findall(r'data-value="([^"]*)"', block)
    return found


def _answered_minutes(table: list[dict[str, Any]]) -> list[float]:
    column = "Первый ответ за, раб. мин"
    return [float(str(r[column]).replace(",", ".")) for r in table if r[column] not in ("", None)]


def test_the_page_and_the_question_exports_show_the_same_figures(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    sign_in(client, w["boss"], session)
    scope = {"territory_id": w["region"].id}
    page = client.get("/dashboard", params={"period": "custom", **PERIOD, **scope})
    assert page.status_code == 200, page.text
    shown = _page_figures(page.text)
    assert shown["Получено вопросов"] == [str(KNOWN["questions"])]
    assert shown["Первый ответ в срок"] == [str(KNOWN["on_time_rate"])]
    assert shown["Медиана первого ответа"] == ["360.0", "924.0"]
    assert shown["По часам на стене"] == ["360.0", "2184.0"]
    assert shown["Снято без ответа"] == [str(KNOWN["dismissal_share"])]
    assert shown["С ответом"] == [str(KNOWN["answered"])]
    assert "3 из 5" in page.text

    # The questions behind «Получено вопросов», one row each, in CSV and XLSX: the
    # same count, and the same median and p90 from their working minutes.
    href = re.search(r'href="(/dashboard/questions\?[^"]*figure=questions[^"]*)"', page.text)
    assert href
    query = unescape(href.group(1)).split("?", 1)[1]
    exported = client.get(f"/dashboard/questions.csv?{query}")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == KNOWN["questions"]
    minutes = _answered_minutes(rows)
    assert percentile(minutes, 0.5) == KNOWN["median_first_response_working_minutes"]
    assert percentile(minutes, 0.9) == pytest.approx(KNOWN["p90_first_response_working_minutes"])
    assert sum(r["Срок первого ответа"] == "вовремя" for r in rows) == KNOWN["on_time"]
    assert sum(r["Статус"] == "Снят" for r in rows) == KNOWN["dismissed"]

    book = client.get(f"/dashboard/questions.xlsx?{query}")
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    table: list[dict[str, Any]] = [
        dict(zip([str(h) for h in values[0]], line, strict=True)) for line in values[1:]
    ]
    assert len(table) == KNOWN["questions"]
    cells = _answered_minutes(table)
    assert sorted(cells) == sorted(minutes)
    assert percentile(cells, 0.5) == KNOWN["median_first_response_working_minutes"]
    assert percentile(cells, 0.9) == pytest.approx(KNOWN["p90_first_response_working_minutes"])
