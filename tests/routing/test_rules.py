"""Routing rules: lemmatised keywords, any/all, regex, territory subtree, first match wins,
actions, and the dry-run on recent questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.questions.models import Question, QuestionStatus, TimelineEntry
from app.routing import service as routing
from app.routing import trial
from app.routing.models import Category
from app.routing.rules import RoutingRuleWrite, RuleConditions
from app.sla import service as sla
from app.sla.models import Target
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution, make_page, make_territory
from tests.factories.questions import make_question

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def _rule(
    session: Session, name: str, conditions: dict[str, Any], actions: dict[str, Any], **kw: Any
) -> int:
    rule = routing.create_rule(
        session,
        RoutingRuleWrite.model_validate(
            {"name": name, "conditions": conditions, "actions": actions, **kw}
        ),
        NOW,
    )
    assert rule.id is not None
    return rule.id


def _arrive(session: Session, text: str, **overrides: Any) -> Question:
    """A citizen's comment with `text`, processed at NOW: triaged, routed, its clocks started."""
    return make_question(session, text=text, now=NOW, **overrides)


def _kinds(session: Session, question: Question) -> list[str]:
    return list(
        session.exec(
            select(TimelineEntry.kind)
            .where(TimelineEntry.question_id == question.id)
            .order_by(col(TimelineEntry.id))
        ).all()
    )


def test_keywords_are_stored_as_lemmas_and_match_any_form(
    client: TestClient, session: Session
) -> None:
    roads = make_institution(session, name="Управление дорог")
    headers = auth_headers(session, make_user(session, Role.admin))
    response = client.post(
        "/api/v1/routing-rules",
        json={
            "name": "Дороги — в управление дорог",
            "conditions": {"keywords": ["дороги", "Ямы на дорогах"]},
            "actions": {"route_to_institution_id": roads.id},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    assert rule["conditions"]["keywords"] == ["дорога", "яма на дорога"]
    for text in ("Когда починят дорогу?", "Дороги не чистят!", "По дорогам не проехать"):
        question = _arrive(session, text)
        assert question.institution_id == roads.id, text
        assert question.routed_by_rule_id == rule["id"]
    untouched = _arrive(session, "Когда откроют бассейн?")
    assert untouched.institution_id != roads.id
    assert untouched.routed_by_rule_id is None


def test_any_and_all_keywords(session: Session) -> None:
    target = make_institution(session)
    _rule(
        session,
        "Горячая вода и отопление",
        {"keywords": ["горячая вода", "отопление"], "keywords_mode": "all"},
        {"route_to_institution_id": target.id},
    )
    assert _arrive(session, "Нет горячей воды").institution_id != target.id
    both = _arrive(session, "Нет горячей воды и отопления в доме 5")
    assert both.institution_id == target.id
    # Phrases match consecutive words only.
    assert _arrive(session, "Вода горячая, а отопления нет").institution_id != target.id


def test_regex_condition_and_classification(session: Session) -> None:
    urgent = _rule(
        session,
        "Аварии — срочно",
        {"regex": r"аварийн|прорыв", "classifications": ["complaint", "question"]},
        {"priority": "urgent"},
    )
    question = _arrive(session, "Аварийная ситуация: прорыв трубы на Ленина 5, когда устраните?")
    assert question.priority == "urgent"
    assert question.routed_by_rule_id == urgent
    first = sla.clocks_of(session, question)[Target.first_response]
    assert first.target_minutes == 240
    thanks = _arrive(session, "Огромное спасибо аварийной службе, всё починили")
    assert thanks.classification == "gratitude"
    assert thanks.priority == "normal"


def test_a_pathological_regex_cannot_stall_routing(session: Session) -> None:
    # With a backtracking engine, "(а+)+$" on 40 «а» and a full stop takes about 2^40
    # steps; RE2 answers in time linear in the text, so this test simply finishes.
    rule = _rule(session, "Катастрофа", {"regex": r"(а+)+$"}, {"priority": "urgent"})
    question = _arrive(session, "Помогите, " + "а" * 40 + ".")
    assert question.routed_by_rule_id != rule
    long_text = "Когда починят дорогу? " + "очень " * 20_000 + "долго ждём"
    assert _arrive(session, long_text).routed_by_rule_id != rule


def test_regex_is_case_insensitive_in_russian(session: Session) -> None:
    rule = _rule(session, "Прорыв", {"regex": r"ПРОРЫВ\s+труб"}, {"priority": "urgent"})
    assert _arrive(session, "У нас прорыв   трубы на Ленина").routed_by_rule_id == rule


def test_a_regex_with_a_backreference_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="RE2"):
        RuleConditions(regex=r"(дом)\s+\1")


def test_territory_subtree_and_platform(session: Session) -> None:
    region = make_territory(session)
    town = make_territory(session, parent_id=region.id)
    village = make_territory(session, parent_id=town.id, kind="settlement")
    other_town = make_territory(session, parent_id=region.id)
    category = Category(name="Сельские вопросы")
    session.add(category)
    session.flush()
    _rule(
        session,
        "Город и сёла",
        {"territory_id": town.id, "platforms": ["vk"]},
        {"category_id": category.id},
    )
    inside = make_page(
        session, institution_id=make_institution(session, territory_id=village.id).id
    )
    outside = make_page(
        session, institution_id=make_institution(session, territory_id=other_town.id).id
    )
    assert (
        _arrive(
            session, "Когда?", page_id=inside.id, institution_id=inside.institution_id
        ).category_id
        == category.id
    )
    assert (
        _arrive(
            session, "Когда?", page_id=outside.id, institution_id=outside.institution_id
        ).category_id
        is None
    )


def test_the_first_matching_enabled_rule_wins(session: Session) -> None:
    first_target = make_institution(session)
    second_target = make_institution(session)
    _rule(
        session,
        "Выключено",
        {"keywords": ["мусор"]},
        {"priority": "urgent"},
        position=1,
        enabled=False,
    )
    second = _rule(
        session,
        "Второе",
        {"keywords": ["мусор"]},
        {"route_to_institution_id": second_target.id},
        position=20,
    )
    first = _rule(
        session,
        "Первое",
        {"keywords": ["контейнер"]},
        {"route_to_institution_id": first_target.id},
        position=10,
    )
    both = _arrive(session, "Мусорные контейнеры переполнены, мусор не вывозят")
    assert (both.institution_id, both.routed_by_rule_id) == (first_target.id, first)
    assert both.priority == "normal"
    only_second = _arrive(session, "Мусор не вывозят неделю")
    assert only_second.routed_by_rule_id == second
    assert _kinds(session, both) == ["created", "classified", "routed"]
    routed = session.exec(
        select(TimelineEntry).where(
            TimelineEntry.question_id == both.id, TimelineEntry.kind == "routed"
        )
    ).one()
    assert routed.data["rule_name"] == "Первое"
    assert routed.data["to_institution_id"] == first_target.id


def test_a_rule_can_dismiss_with_a_reason_and_no_clock_starts(session: Session) -> None:
    _rule(session, "Реклама", {"classifications": ["spam"]}, {"dismiss_reason": "spam"})
    question = _arrive(session, "Заработок от 100000 в день https://x.example https://y.example")
    assert question.classification == "spam"
    assert question.status == QuestionStatus.dismissed
    assert question.dismiss_reason == "spam"
    assert sla.clocks_of(session, question) == {}
    assert _kinds(session, question) == ["created", "classified", "routed", "dismissed"]


def test_repeated_texts_of_the_same_citizen_are_spam(session: Session) -> None:
    page = make_page(session)
    text = "Подпишитесь на мой канал, там всё самое интересное про город"
    kwargs = {
        "page_id": page.id,
        "institution_id": page.institution_id,
        "citizen_platform_id": "777",
    }
    verdicts = [
        _arrive(session, text, created_at=NOW - timedelta(hours=3 - n), **kwargs).classification
        for n in range(3)
    ]
    assert verdicts[-1] == "spam"
    assert verdicts[0] != "spam"


def test_a_rule_without_action_or_with_a_bad_regex_is_refused(
    client: TestClient, session: Session
) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    no_action = client.post(
        "/api/v1/routing-rules",
        json={"name": "x", "conditions": {"keywords": ["мусор"]}, "actions": {}},
        headers=headers,
    )
    assert no_action.status_code == 422
    assert no_action.json()["error"]["code"] == "rule_no_action"
    bad = client.post(
        "/api/v1/routing-rules",
        json={"name": "x", "conditions": {"regex": "("}, "actions": {"priority": "urgent"}},
        headers=headers,
    )
    assert bad.status_code == 422
    operator = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    denied = client.get("/api/v1/routing-rules", headers=auth_headers(session, operator))
    assert denied.status_code == 403


def test_rule_crud_through_the_api(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    category = client.post(
        "/api/v1/categories", json={"name": "Дороги", "sector": "transport"}, headers=headers
    ).json()
    created = client.post(
        "/api/v1/routing-rules",
        json={
            "name": "Дороги",
            "conditions": {"keywords": ["яма"]},
            "actions": {"category_id": category["id"]},
        },
        headers=headers,
    ).json()
    assert created["position"] == 10
    patched = client.patch(
        f"/api/v1/routing-rules/{created['id']}",
        json={"enabled": False, "position": 5},
        headers=headers,
    ).json()
    assert (patched["enabled"], patched["position"]) == (False, 5)
    assert patched["conditions"]["keywords"] == ["яма"]
    listed = client.get("/api/v1/routing-rules", headers=headers).json()["items"]
    assert [r["id"] for r in listed] == [created["id"]]
    assert client.get("/api/v1/categories", headers=headers).json()["items"][0]["name"] == "Дороги"
    deleted = client.delete(f"/api/v1/routing-rules/{created['id']}", headers=headers)
    assert deleted.status_code == 204


def test_a_rule_is_tried_on_the_last_questions_before_it_is_saved(
    client: TestClient, session: Session
) -> None:
    page = make_page(session)
    assert page.id is not None
    base = NOW - timedelta(days=30)
    texts = ["Когда починят дорогу на Садовой?"] * 37 + ["Когда откроют бассейн?"] * 63
    # The oldest 20 questions fall outside the last hundred.
    texts = ["Дороги разбиты"] * 20 + texts
    for n, text in enumerate(texts):
        make_question(session, page_id=page.id, text=text, created_at=base + timedelta(minutes=n))
    headers = auth_headers(session, make_user(session, Role.admin))
    earlier = _rule(session, "Садовая", {"keywords": ["садовый"]}, {"priority": "urgent"})
    result = client.post(
        "/api/v1/routing-rules/try",
        json={"conditions": {"keywords": ["дороги"]}, "limit": 100},
        headers=headers,
    )
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["total"], body["matched"], body["shadowed"]) == (100, 37, 37)
    assert body["message"].startswith("Правило сработало бы на 37 из 100 вопросов")
    assert len(body["examples"]) == 20
    assert body["examples"][0]["taken_by_rule_id"] == earlier
    # Standing first, nothing takes its questions away.
    first = client.post(
        "/api/v1/routing-rules/try",
        json={"conditions": {"keywords": ["дороги"]}, "position": 0, "limit": 100},
        headers=headers,
    ).json()
    assert (first["matched"], first["shadowed"]) == (37, 0)
    # By default the last thousand are tried: here all 120, the oldest 20 too.
    everything = client.post(
        "/api/v1/routing-rules/try", json={"conditions": {"keywords": ["дороги"]}}, headers=headers
    ).json()
    assert (everything["total"], everything["matched"]) == (120, 57)


def test_a_try_counts_thousands_the_russian_way() -> None:
    assert trial._number(1000) == "1\u00a0000"
    assert trial._number(12345) == "12\u00a0345"
