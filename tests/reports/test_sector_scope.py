"""A sector department's supervisor (a regional ministry of education): every
institution of their sector within their territory subtree, whoever owns it, and
nothing of any other sector."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import Role
from app.core.config import Settings
from app.questions.models import Question
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.reports import world
from tests.reports.world import PERIOD


def test_a_sector_supervisor_sees_their_sector_across_the_region(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    ministry = make_user(session, Role.supervisor, territory_id=w["region"].id, sector="education")
    headers = auth_headers(session, ministry)
    dash = client.get(
        "/api/v1/reports/dashboard", params={"period": "custom", **PERIOD}, headers=headers
    )
    assert dash.status_code == 200, dash.text
    body = dash.json()
    # The school's four questions of March (the fifth was moved to the administration).
    assert body["headline"]["questions"] == 4
    assert [c["name"] for c in body["breadcrumbs"]] == ["Область", "Образование"]
    assert {r["key"] for r in body["by_sector"]} == {"education"}
    listed = client.get(
        "/api/v1/questions", params={"territory_id": w["region"].id}, headers=headers
    ).json()["items"]
    assert {q["institution_id"] for q in listed} == {w["school"].id}
    clinic = session.exec(select(Question).where(Question.institution_id == w["clinic"].id)).first()
    assert clinic is not None
    assert client.get(f"/api/v1/questions/{clinic.id}", headers=headers).status_code == 404
    # Another sector's institution is not found; a made-up sector is refused.
    assert (
        client.get(
            "/api/v1/reports/sla", params={"institution_id": w["clinic"].id}, headers=headers
        ).status_code
        == 404
    )
    created = client.post(
        "/api/v1/users",
        json={"login": "x.sector", "role": "supervisor", "territory_id": 1, "sector": "mining"},
        headers=auth_headers(session, w["boss"]),
    )
    assert created.status_code == 422, created.text
