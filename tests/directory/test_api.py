"""The directory part of the JSON API, with the names api.md fixes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.directory.models import Page
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import cipher, make_institution, make_territory


def test_admin_builds_the_directory_through_the_api(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    region = client.post(
        "/api/v1/territories",
        json={
            "name": "Челябинская область",
            "kind": "region",
            "parent_id": None,
            "timezone": "Asia/Yekaterinburg",
        },
        headers=headers,
    )
    assert region.status_code == 201, region.text
    town = client.post(
        "/api/v1/territories",
        json={
            "name": "Чебаркульский городской округ",
            "kind": "municipality",
            "parent_id": region.json()["id"],
            "timezone": "Asia/Yekaterinburg",
        },
        headers=headers,
    ).json()
    assert town["full_name"] == "Челябинская область / Чебаркульский городской округ"
    institution = client.post(
        "/api/v1/institutions",
        json={
            "name": "Администрация Чебаркульского ГО",
            "territory_id": town["id"],
            "sector": "administration",
            "parent_id": None,
        },
        headers=headers,
    )
    assert institution.status_code == 201, institution.text
    page = client.post(
        "/api/v1/pages",
        json={
            "institution_id": institution.json()["id"],
            "platform": "vk",
            "name": "Администрация в ВК",
            "url": "https://vk.com/club218734591",
            "external_id": 218734591,
            "secret": "Zr7qL2vN9xKw",
            "confirmation_code": "a1b2c3d4",
            "access_token": "vk1.a.token",
            "staff_ids": [512348907],
        },
        headers=headers,
    )
    assert page.status_code == 201, page.text
    body = page.json()
    assert body["external_id"] == "218734591"
    assert body["staff_ids"] == ["512348907"]
    assert len(body["key"]) >= 32
    assert body["webhook_url"] == f"https://otklik.example.ru/webhooks/vk/{body['key']}"
    assert "secret" not in body and "access_token" not in body
    assert body["has_secret"] is True

    # Credentials are stored encrypted, never in plain text.
    stored = session.get(Page, body["id"])
    assert stored is not None
    assert stored.secret_enc and "Zr7qL2vN9xKw" not in stored.secret_enc
    assert cipher().decrypt(stored.secret_enc) == "Zr7qL2vN9xKw"

    listed = client.get("/api/v1/pages", headers=headers).json()
    assert [p["id"] for p in listed["items"]] == [body["id"]]
    assert listed["next_cursor"] is None

    updated = client.patch(
        f"/api/v1/pages/{body['id']}", json={"name": "Новое имя"}, headers=headers
    )
    assert updated.status_code == 200 and updated.json()["name"] == "Новое имя"


def test_errors_have_the_documented_shape(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    missing = client.get("/api/v1/pages/999999", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = client.post(
        "/api/v1/territories",
        json={"name": "X", "kind": "planet", "timezone": "Mars/Base"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert set(bad.json()["error"]) == {"code", "message"}
    assert client.get("/api/v1/pages").status_code == 401
    assert (
        client.get("/api/v1/pages", headers={"Authorization": "Bearer nope"}).json()["error"][
            "code"
        ]
        == "invalid_token"
    )


def test_only_admins_change_the_directory(client: TestClient, session: Session) -> None:
    institution = make_institution(session)
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    response = client.post(
        "/api/v1/territories",
        json={"name": "X", "kind": "region", "timezone": "Europe/Moscow"},
        headers=auth_headers(session, operator),
    )
    assert response.status_code == 403


def test_lists_paginate_with_a_cursor(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    region = make_territory(session)
    for n in range(5):
        make_territory(session, name=f"Район {n}", parent_id=region.id)
    first = client.get(
        "/api/v1/territories", params={"parent_id": region.id, "limit": 2}, headers=headers
    ).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [t["id"] for t in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(
            "/api/v1/territories",
            params={"parent_id": region.id, "limit": 2, "cursor": cursor},
            headers=headers,
        ).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert (
        client.get("/api/v1/territories", params={"limit": 500}, headers=headers).status_code == 422
    )


def test_operator_sees_only_own_institutions(client: TestClient, session: Session) -> None:
    mine = make_institution(session)
    other = make_institution(session)
    operator = make_user(session, Role.operator, institution_ids=[mine.id])
    headers = auth_headers(session, operator)
    listed = client.get("/api/v1/institutions", headers=headers).json()
    assert [i["id"] for i in listed["items"]] == [mine.id]
    assert client.get(f"/api/v1/institutions/{other.id}", headers=headers).status_code == 404
