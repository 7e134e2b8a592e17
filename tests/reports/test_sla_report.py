"""SLA report: figures per group, dismissals and wrong-queue time, scope, exports, backlog."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from app.auth.models import Role, User
from app.core.config import Settings
from app.reports.figures import percentile
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.reports import world
from tests.reports.world import PERIOD

_world = world.build
_question = world.question
_local = world.local


def _get(client: TestClient, session: Session, user: User, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/reports/sla", params={**PERIOD, **params}, headers=auth_headers(session, user)
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_per_institution_figures(client: TestClient, session: Session, settings: Settings) -> None:
    w = _world(session, settings)
    rows = {r["name"]: r for r in _get(client, session, w["boss"])}
    assert set(rows) == {"Школа", "Больница", "Администрация"}
    school = rows["Школа"]
    assert school["key"] == str(w["school"].id)
    assert {k: school[k] for k in ("questions", "answered", "on_time", "breached", "open")} == {
        "questions": 4,
        "answered": 2,
        "on_time": 1,
        "breached": 2,
        "open": 1,
    }
    assert school["dismissed"] == 1
    assert school["dismissed_by_reason"] == {"spam": 1}
    assert school["on_time_rate"] == 0.3333
    assert school["median_first_response_working_minutes"] == 720.0
    assert school["p90_first_response_working_minutes"] == 1056.0
    assert school["median_first_response_wall_minutes"] == 1620.0
    # The moved question sat two hours in the school's queue: charged to the school.
    assert (school["transferred_out"], school["wrong_queue_wall_minutes"]) == (1, 120.0)
    assert school["wrong_queue_working_minutes"] == 120.0
    admin = rows["Администрация"]
    assert (admin["questions"], admin["on_time"], admin["transferred_out"]) == (1, 1, 0)
    assert admin["median_first_response_working_minutes"] == 420.0
    clinic = rows["Больница"]
    assert (clinic["questions"], clinic["answered"], clinic["on_time_rate"]) == (2, 1, 1.0)
    assert clinic["open"] == 1  # the thanks are still open; they are no debt (see backlog)


def test_groups(client: TestClient, session: Session, settings: Settings) -> None:
    w = _world(session, settings)
    boss = w["boss"]
    by_territory = _get(client, session, boss, group_by="territory", territory_id=w["region"].id)
    assert [(r["name"], r["questions"], r["transferred_out"]) for r in by_territory] == [
        ("Город А", 5, 1),
        ("Город Б", 2, 0),
    ]
    by_sector = {r["key"]: r for r in _get(client, session, boss, group_by="sector")}
    assert by_sector["education"]["name"] == "Образование"
    assert by_sector["health"]["questions"] == 2
    by_day = _get(client, session, boss, group_by="day")
    assert [(r["key"], r["name"], r["questions"]) for r in by_day] == [
        ("2026-03-10", "10.03.2026", 7)
    ]
    by_week = _get(client, session, boss, group_by="week")
    assert [(r["key"], r["name"]) for r in by_week] == [("2026-W11", "09.03 – 15.03.2026")]
    pages = _get(client, session, boss, group_by="page", institution_id=w["clinic"].id)
    assert len(pages) == 2 and all(r["name"].startswith("Страница") for r in pages)
    february = _get(client, session, boss, **{"from": "2026-02-01", "to": "2026-02-28"})
    assert [r["questions"] for r in february] == [1]
    bad = client.get(
        "/api/v1/reports/sla",
        params={"group_by": "planet"},
        headers=auth_headers(session, boss),
    )
    assert bad.status_code == 422


def test_the_report_is_scoped(client: TestClient, session: Session, settings: Settings) -> None:
    w = _world(session, settings)
    operator = make_user(session, Role.operator, institution_ids=[w["clinic"].id])
    assert [r["name"] for r in _get(client, session, operator)] == ["Больница"]
    supervisor = make_user(session, Role.supervisor, territory_id=w["town_a"].id)
    assert [r["name"] for r in _get(client, session, supervisor)] == ["Администрация", "Школа"]
    # Someone else's institution or territory is not found, exactly like a missing one.
    for params in ({"institution_id": w["school"].id}, {"territory_id": w["town_a"].id}):
        response = client.get(
            "/api/v1/reports/sla",
            params={**PERIOD, **params},
            headers=auth_headers(session, operator),
        )
        assert response.status_code == 404
    neighbour = client.get(
        "/api/v1/reports/dashboard",
        params={"territory_id": w["town_b"].id},
        headers=auth_headers(session, supervisor),
    )
    assert neighbour.status_code == 404
    # Without a territory, territory groups are the children of the caller's own root.
    regional = make_user(session, Role.supervisor, territory_id=w["region"].id)
    rows = _get(client, session, regional, group_by="territory")
    assert [(r["name"], r["questions"]) for r in rows] == [("Город А", 5), ("Город Б", 2)]


def test_csv_and_xlsx_exports(client: TestClient, session: Session, settings: Settings) -> None:
    w = _world(session, settings)
    headers = auth_headers(session, w["boss"])
    response = client.get("/api/v1/reports/sla.csv", params=PERIOD, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())  # Excel reads UTF-8 by the BOM
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    school = next(r for r in rows if r["Группа"] == "Школа")
    assert (school["Вопросов"], school["Доля в срок, %"], school["Снято: спам"]) == (
        "4",
        "33,33",
        "1",
    )
    assert school["Медиана первого ответа, раб. мин"] == "720"
    xlsx = client.get("/api/v1/reports/sla.xlsx", params=PERIOD, headers=headers)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    # The period in the territory's zone (Yekaterinburg is two hours ahead of Moscow).
    assert values[1][0] == "Период: 01.03.2026 – 31.03.2026 (МСК+2)"
    assert values[2][:4] == ("Ключ", "Группа", "Вопросов", "С ответом")
    assert {row[1] for row in values[3:]} == {"Школа", "Больница", "Администрация"}


def test_backlog_by_age(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = _world(session, settings)
    _question(session, w["clinic"].id, created_at=_local(11, 8))
    clock.now = _local(11, 9)
    response = client.get(
        "/api/v1/reports/backlog", headers=auth_headers(session, w["boss"])
    ).json()
    rows = {r["name"]: r for r in response["items"]}
    assert set(rows) == {"Школа", "Больница"}
    school, clinic = rows["Школа"], rows["Больница"]
    # The breached one, and February's, long past its deadline too.
    assert (school["open"], school["overdue"]) == (2, 2)
    assert (school["by_age"]["8h_24h"], school["by_age"]["over_7d"]) == (1, 1)
    assert school["oldest_wall_minutes"] == (36 * 24 + 4) * 60
    assert (clinic["open"], clinic["overdue"], clinic["by_age"]["1h_8h"]) == (1, 0, 1)


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(1, 11))), 0.9) == 9.1
