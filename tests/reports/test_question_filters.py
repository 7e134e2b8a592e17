"""`GET /api/v1/questions` with the drill-down's filters: the questions behind each of
the hand-built region's figures, and a neighbour's territory not found."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.core.config import Settings
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.reports import world

MARCH = {"from": "2026-02-28T19:00:00Z", "to": "2026-03-31T19:00:00Z"}  # local midnights


def _ids(client: TestClient, headers: dict[str, str], **params: Any) -> int:
    response = client.get("/api/v1/questions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def test_the_drill_down_filters(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    boss = auth_headers(session, w["boss"])
    region = {"territory_id": w["region"].id}
    assert _ids(client, boss, **region, **MARCH) == 7
    assert _ids(client, boss, **region) == 8  # February's too
    assert _ids(client, boss, territory_id=w["town_a"].id, **MARCH) == 5
    assert _ids(client, boss, **region, sector="health", **MARCH) == 2
    assert _ids(client, boss, **region, source="native", **MARCH) == 4
    assert _ids(client, boss, **region, source="otklik", **MARCH) == 0
    # Answered on 10 March (local): three; on the 12th: one.
    day = {"answered_from": "2026-03-09T19:00:00Z", "answered_to": "2026-03-10T19:00:00Z"}
    assert _ids(client, boss, **region, **day) == 3
    assert _ids(client, boss, **region, overdue="true") == 2
    assert _ids(client, boss, **region, sla_state="breached") == 2
    bad = client.get("/api/v1/questions", params={"source": "fax"}, headers=boss)
    assert bad.status_code == 422

    town_b = make_user(session, Role.supervisor, territory_id=w["town_b"].id)
    neighbour = auth_headers(session, town_b)
    assert _ids(client, neighbour, territory_id=w["town_b"].id) == 2
    for territory in (w["town_a"].id, w["region"].id, 999999):
        response = client.get(
            "/api/v1/questions", params={"territory_id": territory}, headers=neighbour
        )
        if territory == w["region"].id:
            # Their own territory lies within the region: only their questions.
            assert {q["institution_id"] for q in response.json()["items"]} == {w["clinic"].id}
        else:
            assert response.status_code == 404, territory
