"""/admin/directory and /admin/pages/{id}: the tree, search, create, edit, move, switch a
page off (it stops receiving, keeps its history); each change in the audit log."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import AuditEvent, Role
from app.directory.models import Institution, Page, Sector, Territory
from tests.factories.admin_web import sign_in
from tests.factories.directory import make_institution, make_page, make_territory


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


@pytest.fixture
def region(session: Session) -> dict[str, object]:
    region = make_territory(session, name="Челябинская область")
    city = make_territory(session, name="Копейский городской округ", parent_id=region.id)
    school = make_institution(
        session, territory_id=city.id, name="Школа № 7", sector=Sector.education
    )
    page = make_page(session, institution_id=school.id, name="Школа № 7 ВКонтакте")
    session.commit()
    return {"region": region, "city": city, "school": school, "page": page}


def test_tree_shows_territories_institutions_and_pages(
    client: TestClient, session: Session, region: dict[str, object]
) -> None:
    sign_in(client, session)
    city = region["city"]
    assert isinstance(city, Territory)
    html = client.get(f"/admin/directory?territory={city.id}").text
    assert "Челябинская область" in html and "Копейский городской округ" in html
    assert "Школа № 7" in html and "Школа № 7 ВКонтакте" in html
    assert "1\u00a0учреждение" in html
    # Search finds by a page's platform id and by words in any case.
    page = region["page"]
    assert isinstance(page, Page)
    assert "Школа № 7" in client.get(f"/admin/directory?q={page.external_id}").text
    found = client.get("/admin/directory?q=ШКОЛА").text
    assert "Найдено: 1" in found
    assert "Ничего не нашлось" in client.get("/admin/directory?q=больница").text
    assert client.get("/admin/directory?territory=987654").status_code == 404


def test_create_territory_and_institution_then_move_it(
    client: TestClient, session: Session, region: dict[str, object]
) -> None:
    _, csrf = sign_in(client, session)
    city = region["city"]
    assert isinstance(city, Territory)
    answer = client.post(
        "/admin/directory/territories",
        data={
            "csrf_token": csrf,
            "name": "Бажовское сельское поселение",
            "kind": "settlement",
            "timezone": "Asia/Yekaterinburg",
            "parent_id": str(city.id),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    village = session.exec(
        select(Territory).where(Territory.name == "Бажовское сельское поселение")
    ).one()
    assert village.full_name.endswith("Копейский городской округ / Бажовское сельское поселение")

    # A bad form keeps the values and says how to fix it.
    bad = client.post(
        "/admin/directory/institutions",
        data={
            "csrf_token": csrf,
            "name": " ",
            "sector": "culture",
            "territory_id": str(village.id),
        },
    )
    assert bad.status_code == 422
    assert "Ошибка: " in bad.text and "Заполните это поле" in bad.text

    made = client.post(
        "/admin/directory/institutions",
        data={
            "csrf_token": csrf,
            "name": "ДК «Горняк»",
            "sector": "culture",
            "territory_id": str(village.id),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    dk = session.exec(select(Institution).where(Institution.name == "ДК «Горняк»")).one()
    school = region["school"]
    assert isinstance(school, Institution)
    moved = client.post(
        f"/admin/directory/institutions/{dk.id}",
        data={
            "csrf_token": csrf,
            "name": "ДК «Горняк»",
            "sector": "culture",
            "territory_id": str(city.id),
            "parent_id": str(school.id),
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303
    session.expire_all()
    dk = session.get(Institution, dk.id)
    assert dk is not None and dk.territory_id == city.id and dk.parent_id == school.id
    assert dk.path == f"{school.path}{dk.id}/"
    entry = _audit(session, "institution.update")[-1]
    assert entry.before == {"territory_id": village.id, "parent_id": None}
    assert entry.after == {"territory_id": city.id, "parent_id": school.id}
    assert _audit(session, "territory.create") and _audit(session, "institution.create")

    # An institution cannot be put under itself: a clear error, nothing changed.
    cycle = client.post(
        f"/admin/directory/institutions/{school.id}",
        data={
            "csrf_token": csrf,
            "name": school.name,
            "sector": "education",
            "territory_id": str(city.id),
            "parent_id": str(dk.id),
        },
    )
    assert cycle.status_code == 422 and "само себе" in cycle.text


def test_a_switched_off_page_keeps_its_history_and_stops_receiving(
    client: TestClient, session: Session, region: dict[str, object]
) -> None:
    _, csrf = sign_in(client, session)
    page = region["page"]
    assert isinstance(page, Page)
    detail = client.get(f"/admin/pages/{page.id}").text
    assert "Принимает события" in detail and f"/webhooks/vk/{page.key}" in detail
    assert f'hx-get="/admin/pages/{page.id}/health"' in detail and "нет данных" in detail
    off = client.post(
        f"/admin/pages/{page.id}/deactivate", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert off.status_code == 303
    session.expire_all()
    assert session.get(Page, page.id).is_active is False  # type: ignore[union-attr]
    assert "Отключена" in client.get(f"/admin/pages/{page.id}").text
    assert _audit(session, "page.deactivate")[-1].after == {"is_active": False}
    # The receiver refuses deliveries for a switched-off page (the page still exists).
    body = json.dumps(
        {
            "type": "wall_reply_new",
            "group_id": int(page.external_id),
            "secret": "Zr7qL2vN9xKw",
            "event_id": "e1",
            "object": {},
        }
    )
    refused = client.post(f"/webhooks/vk/{page.key}", content=body)
    assert refused.status_code in (403, 404, 410), refused.text
    on = client.post(
        f"/admin/pages/{page.id}/activate", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert on.status_code == 303
    assert _audit(session, "page.activate")


def test_page_settings_are_checked_and_saved(
    client: TestClient, session: Session, region: dict[str, object]
) -> None:
    _, csrf = sign_in(client, session)
    page = region["page"]
    school = region["school"]
    assert isinstance(page, Page) and isinstance(school, Institution)
    bad = client.post(
        f"/admin/pages/{page.id}",
        data={
            "csrf_token": csrf,
            "name": "",
            "url": "vk.com/x",
            "institution_id": str(school.id),
            "staff_ids": "12, abc",
        },
    )
    assert bad.status_code == 422
    assert "Укажите название страницы" in bad.text and "числовые id" in bad.text
    assert 'value="12, abc"' in bad.text  # the values typed are kept
    good = client.post(
        f"/admin/pages/{page.id}",
        data={
            "csrf_token": csrf,
            "name": "Школа № 7",
            "url": "https://vk.com/school7",
            "institution_id": str(school.id),
            "staff_ids": "12; 34",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    session.expire_all()
    saved = session.get(Page, page.id)
    assert (
        saved is not None
        and saved.staff_ids == ["12", "34"]
        and saved.url == "https://vk.com/school7"
    )
    assert _audit(session, "page.update")[-1].after["name"] == "Школа № 7"  # type: ignore[index]


def test_export_is_the_import_format(
    client: TestClient, session: Session, region: dict[str, object]
) -> None:
    sign_in(client, session)
    csv = client.get("/admin/directory/export?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "Школа № 7 ВКонтакте" in csv.content.decode("utf-8-sig")
    xlsx = client.get("/admin/directory/export?format=xlsx")
    assert xlsx.content[:2] == b"PK"


def test_the_json_api_changes_are_audited_too(client: TestClient, session: Session) -> None:
    from tests.factories.auth import auth_headers, make_user

    admin = make_user(session, Role.admin)
    headers = auth_headers(session, admin)
    session.commit()
    made = client.post(
        "/api/v1/territories",
        json={"name": "Курганская область", "kind": "region", "timezone": "Asia/Yekaterinburg"},
        headers=headers,
    )
    assert made.status_code == 201
    school = client.post(
        "/api/v1/institutions",
        json={"name": "Школа № 9", "territory_id": made.json()["id"], "sector": "education"},
        headers=headers,
    ).json()
    page = client.post(
        "/api/v1/pages",
        json={
            "institution_id": school["id"],
            "platform": "vk",
            "name": "Школа № 9",
            "external_id": "5550009",
            "secret": "Sekret123",
            "access_token": "vk1.a.tok",
        },
        headers=headers,
    ).json()
    changed = client.patch(
        f"/api/v1/pages/{page['id']}", json={"is_active": False}, headers=headers
    )
    assert changed.status_code == 200
    assert _audit(session, "territory.create")[-1].after["full_name"] == "Курганская область"  # type: ignore[index]
    created = _audit(session, "page.create")[-1].after
    assert created is not None and created["secret_enc"] == "••••••"
    assert "Sekret123" not in str(created) and "vk1.a.tok" not in str(created)
    assert _audit(session, "page.update")[-1].after == {"is_active": False}
