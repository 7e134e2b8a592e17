"""SLA policies and calendars through the API."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.sla import service as sla
from app.sla.models import Target
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution
from tests.factories.questions import make_question


def test_a_policy_with_its_own_calendar_sets_the_deadlines(
    client: TestClient, session: Session
) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    calendar = client.post(
        "/api/v1/calendars",
        json={
            "name": "Поликлиника",
            "weekly": {
                str(day): [["08:00", "12:00"], ["13:00", "17:00"]] for day in range(6)
            },  # Monday to Saturday, lunch 12-13
        },
        headers=headers,
    )
    assert calendar.status_code == 201, calendar.text
    clinic = make_institution(session, sector="health")
    policy = client.post(
        "/api/v1/sla-policies",
        json={
            "name": "Поликлиники",
            "institution_id": clinic.id,
            "first_response_minutes": 300,
            "calendar_id": calendar.json()["id"],
            "effective_from": "2026-01-01T00:00:00+05:00",
        },
        headers=headers,
    )
    assert policy.status_code == 201, policy.text
    assert policy.json()["warn_ratio"] == 0.75
    assert policy.json()["final_answer_minutes"] == 7 * 9 * 60
    # Tuesday 10:00 local (UTC+5): 2 h before lunch, 3 h after: 16:00.
    question = make_question(
        session, institution_id=clinic.id, created_at=datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    )
    assert question.policy_id == policy.json()["id"]
    first = sla.clocks_of(session, question)[Target.first_response]
    assert first.due_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    effective = client.get(
        "/api/v1/sla-policies/effective",
        params={"institution_id": clinic.id, "at": "2026-03-10T10:00:00+05:00"},
        headers=headers,
    )
    assert effective.json()["id"] == policy.json()["id"]
    listed = client.get("/api/v1/sla-policies", headers=headers).json()["items"]
    assert [p["name"] for p in listed] == ["Поликлиники"]
    in_use = client.delete(f"/api/v1/calendars/{calendar.json()['id']}", headers=headers)
    assert (in_use.status_code, in_use.json()["error"]["code"]) == (409, "calendar_in_use")


def test_invalid_policies_and_calendars_are_refused(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    bad_hours = client.post(
        "/api/v1/calendars",
        json={"name": "Ночь", "weekly": {"0": [["18:00", "09:00"]]}},
        headers=headers,
    )
    assert bad_hours.status_code == 422
    bad_zone = client.post(
        "/api/v1/calendars",
        json={"name": "Марс", "timezone": "Mars/Olympus"},
        headers=headers,
    )
    assert bad_zone.status_code == 422
    both = client.post(
        "/api/v1/sla-policies",
        json={"name": "x", "institution_id": make_institution(session).id, "sector": "health"},
        headers=headers,
    )
    assert both.status_code == 422
    ratio = client.post(
        "/api/v1/sla-policies", json={"name": "x", "warn_ratio": 1.5}, headers=headers
    )
    assert ratio.status_code == 422
    operator = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    denied = client.post(
        "/api/v1/sla-policies", json={"name": "x"}, headers=auth_headers(session, operator)
    )
    assert denied.status_code == 403


def test_calendars_crud(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    created = client.post(
        "/api/v1/calendars",
        json={"name": "ДК", "timezone": "Asia/Vladivostok", "extra_days_off": ["2026-06-13"]},
        headers=headers,
    ).json()
    assert created["weekly"]["0"] == [["09:00", "18:00"]]
    replaced = client.put(
        f"/api/v1/calendars/{created['id']}",
        json={"name": "ДК", "weekly": {"5": [["10:00", "16:00"]]}},
        headers=headers,
    ).json()
    assert replaced["weekly"] == {"5": [["10:00", "16:00"]]}
    assert client.get(f"/api/v1/calendars/{created['id']}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/calendars/{created['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/calendars/{created['id']}", headers=headers).status_code == 404
