"""/admin/categories and /admin/canned: create and edit categories; canned responses per
institution or for all, their variables checked and previewed on a sample question;
every change in the audit log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.answering.models import CannedResponse
from app.auth.models import AuditEvent
from app.directory.models import Institution
from app.routing.models import Category
from tests.factories.admin_web import sign_in
from tests.factories.directory import make_institution


@pytest.fixture
def school(session: Session) -> Institution:
    school = make_institution(session, name="Школа № 5")
    session.commit()
    return school


def _actions(session: Session) -> list[str]:
    session.expire_all()
    return [e.action for e in session.exec(select(AuditEvent))]


def test_categories(client: TestClient, session: Session) -> None:
    _, csrf = sign_in(client, session)
    empty = client.post("/admin/categories", data={"csrf_token": csrf, "name": " "})
    assert empty.status_code == 422 and "Назовите категорию" in empty.text
    made = client.post(
        "/admin/categories",
        data={"csrf_token": csrf, "name": "Дороги", "sector": "transport"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    category = session.exec(select(Category).where(Category.name == "Дороги")).one()
    assert category.sector == "transport"
    twice = client.post("/admin/categories", data={"csrf_token": csrf, "name": "Дороги"})
    assert twice.status_code == 422 and "уже существует" in twice.text
    renamed = client.post(
        f"/admin/categories/{category.id}",
        data={"csrf_token": csrf, "name": "Дороги и тротуары", "sector": ""},
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    session.expire_all()
    assert session.get(Category, category.id).name == "Дороги и тротуары"  # type: ignore[union-attr]
    assert "Дороги и тротуары" in client.get("/admin/categories").text
    assert {"category.create", "category.update"} <= set(_actions(session))


def test_canned_with_preview(client: TestClient, session: Session, school: Institution) -> None:
    _, csrf = sign_in(client, session)
    text = "{{citizen_name}}, здравствуйте! {{institution}} ответит до {{expected_date}}. <b>"
    preview = client.post(
        "/admin/canned/preview",
        data={"csrf_token": csrf, "text": text, "institution_id": str(school.id)},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200
    assert "Ирина, здравствуйте! Школа № 5 ответит до 13.03.2026." in preview.text
    assert "&lt;b&gt;" in preview.text  # the text is escaped, never markup
    unknown = client.post(
        "/admin/canned",
        data={"csrf_token": csrf, "title": "Т", "text": "{{name}}", "action": "save"},
    )
    assert unknown.status_code == 422 and "Неизвестные переменные: {{name}}" in unknown.text
    nojs = client.post(
        "/admin/canned",
        data={
            "csrf_token": csrf,
            "title": "Промежуточный",
            "text": text,
            "institution_id": str(school.id),
            "action": "preview",
        },
    )
    assert nojs.status_code == 200 and "Ирина, здравствуйте!" in nojs.text
    assert session.exec(select(CannedResponse)).first() is None  # a preview saves nothing
    saved = client.post(
        "/admin/canned",
        data={
            "csrf_token": csrf,
            "title": "Промежуточный",
            "text": text,
            "institution_id": str(school.id),
            "action": "save",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    row = session.exec(select(CannedResponse)).one()
    assert row.institution_id == school.id
    common = client.post(
        "/admin/canned",
        data={
            "csrf_token": csrf,
            "title": "Спасибо",
            "text": "Спасибо за обращение!",
            "institution_id": "",
            "action": "save",
        },
        follow_redirects=False,
    )
    assert common.status_code == 303
    listing = client.get(f"/admin/canned?institution_id={school.id}").text
    assert "Промежуточный" in listing and "для всех учреждений" in listing
    edited = client.post(
        f"/admin/canned/{row.id}",
        data={
            "csrf_token": csrf,
            "title": "Промежуточный ответ",
            "text": "Разбираемся.",
            "action": "save",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    deleted = client.post(
        f"/admin/canned/{row.id}/delete", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert session.get(CannedResponse, row.id) is None
    actions = _actions(session)
    assert (
        actions.count("canned.create") == 2
        and "canned.update" in actions
        and "canned.delete" in actions
    )
    assert client.get("/admin/canned/987654").status_code == 404
