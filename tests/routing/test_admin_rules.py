"""/admin/rules: the ordered list, «Выше»/«Ниже», on/off, a rule's form with the
"would have matched" preview on recent questions before saving; audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.models import AuditEvent
from app.directory.models import Institution
from app.routing.models import RoutingRule
from tests.factories.admin_web import sign_in
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import make_question

ROAD = "Когда починят дорогу на улице Ленина? Там огромные ямы"


@pytest.fixture
def roads(session: Session) -> Institution:
    city = make_institution(session, name="Администрация")
    page = make_page(session, institution_id=city.id)
    make_question(session, page_id=page.id, text=ROAD)
    make_question(session, page_id=page.id, text="Спасибо за праздник во дворе!")
    roads = make_institution(session, territory_id=city.territory_id, name="Дорожный отдел")
    session.commit()
    return roads


def _rules(session: Session) -> list[RoutingRule]:
    session.expire_all()
    return list(
        session.exec(select(RoutingRule).order_by(col(RoutingRule.position), col(RoutingRule.id)))
    )


def test_preview_then_save_a_rule(client: TestClient, session: Session, roads: Institution) -> None:
    _, csrf = sign_in(client, session)
    form = {
        "csrf_token": csrf,
        "name": "Дороги — в дорожный отдел",
        "keywords": "дороги, яма",
        "keywords_mode": "any",
        "route_to_institution_id": str(roads.id),
    }
    # htmx: the preview fragment alone.
    preview = client.post("/admin/rules/try", data=form, headers={"HX-Request": "true"})
    assert preview.status_code == 200
    assert "Правило сработало бы на 1 из 2 вопросов" in preview.text
    assert "огромные ямы" in preview.text and "Спасибо" not in preview.text
    # Without JavaScript: the whole form again, values kept, preview under it; nothing saved.
    page = client.post("/admin/rules/new", data={**form, "action": "try"})
    assert page.status_code == 200 and "Правило сработало бы на 1 из 2 вопросов" in page.text
    assert 'value="Дороги — в дорожный отдел"' in page.text
    assert _rules(session) == []
    saved = client.post("/admin/rules/new", data={**form, "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303
    [rule] = _rules(session)
    assert rule.conditions["keywords"] == ["дорога", "яма"] and rule.actions == {
        "route_to_institution_id": roads.id
    }
    entry = session.exec(select(AuditEvent).where(AuditEvent.action == "rule.create")).one()
    assert entry.object_id == str(rule.id) and entry.after["name"] == rule.name  # type: ignore[index]
    listing = client.get("/admin/rules").text
    assert "Дороги — в дорожный отдел" in listing and "Передать: Дорожный отдел" in listing


def test_bad_rules_are_explained(client: TestClient, session: Session, roads: Institution) -> None:
    _, csrf = sign_in(client, session)
    no_action = client.post(
        "/admin/rules/new",
        data={"csrf_token": csrf, "name": "x", "keywords": "дорога", "action": "save"},
    )
    assert no_action.status_code == 422 and "Выберите, что делать с вопросом" in no_action.text
    bad = client.post(
        "/admin/rules/new",
        data={"csrf_token": csrf, "name": "", "regex": "(a)\\1", "urgent": "1", "action": "save"},
    )
    assert bad.status_code == 422
    assert "Назовите правило" in bad.text and "Регулярное выражение не подходит" in bad.text
    assert "<title>Ошибка: " in bad.text
    assert _rules(session) == []


def test_order_and_switch(client: TestClient, session: Session, roads: Institution) -> None:
    _, csrf = sign_in(client, session)
    for name in ("Первое", "Второе", "Третье"):
        client.post(
            "/admin/rules/new",
            data={
                "csrf_token": csrf,
                "name": name,
                "keywords": name,
                "urgent": "1",
                "action": "save",
            },
        )
    first, second, third = _rules(session)
    moved = client.post(
        f"/admin/rules/{third.id}/move",
        data={"csrf_token": csrf, "direction": "up"},
        headers={"HX-Request": "true"},
    )
    assert moved.status_code == 200 and 'id="rules"' in moved.text and "<html" not in moved.text
    assert [r.name for r in _rules(session)] == ["Первое", "Третье", "Второе"]
    client.post(
        f"/admin/rules/{first.id}/move",
        data={"csrf_token": csrf, "direction": "down"},
        follow_redirects=False,
    )
    assert [r.name for r in _rules(session)] == ["Третье", "Первое", "Второе"]
    # The first rule cannot go higher: nothing changes.
    client.post(f"/admin/rules/{third.id}/move", data={"csrf_token": csrf, "direction": "up"})
    assert [r.name for r in _rules(session)] == ["Третье", "Первое", "Второе"]
    off = client.post(
        f"/admin/rules/{second.id}/toggle", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert off.status_code == 303
    assert not session.get(RoutingRule, second.id).enabled  # type: ignore[union-attr]
    actions = [
        e.action
        for e in session.exec(
            select(AuditEvent).where(col(AuditEvent.object_type) == "routing_rule")
        )
    ]
    assert actions.count("rule.reorder") == 2 and "rule.disable" in actions
    edit = client.get(f"/admin/rules/{second.id}")
    assert edit.status_code == 200 and 'value="Второе"' in edit.text
    assert client.get("/admin/rules/987654").status_code == 404
