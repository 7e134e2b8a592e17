"""One scoping helper limits every question query: each role sees exactly its part."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth import tokens
from app.auth.models import Role
from app.questions.models import Question
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution, make_page, make_territory


def _question(session: Session, institution_id: int) -> Question:
    page = make_page(session, institution_id=institution_id)
    assert page.id is not None
    question = Question(
        page_id=page.id,
        institution_id=institution_id,
        platform="vk",
        kind="comment",
        thread_key="wall:-1_1",
        text="Когда починят дорогу?",
        created_at=datetime(2026, 3, 10, 5, 0, tzinfo=UTC),
    )
    session.add(question)
    session.flush()
    return question


def _world(session: Session) -> dict[str, object]:
    region = make_territory(session, name="Область")
    town_a = make_territory(session, name="Город А", parent_id=region.id)
    village = make_territory(session, name="Село А-1", parent_id=town_a.id, kind="settlement")
    town_b = make_territory(session, name="Город Б", parent_id=region.id)
    ministry = make_institution(session, territory_id=region.id, name="Министерство")
    school = make_institution(session, territory_id=town_a.id, name="Школа", parent_id=ministry.id)
    club = make_institution(session, territory_id=village.id, name="Дом культуры")
    clinic = make_institution(session, territory_id=town_b.id, name="Больница")
    return {
        "region": region,
        "town_a": town_a,
        "ministry": ministry,
        "school": school,
        "club": club,
        "clinic": clinic,
        "q": {
            name: _question(session, inst.id)
            for name, inst in [
                ("ministry", ministry),
                ("school", school),
                ("club", club),
                ("clinic", clinic),
            ]
        },
    }


def _visible(session: Session, user: object) -> set[int]:
    query = select(Question.id).where(auth_service.scope_filter(user, col(Question.institution_id)))  # type: ignore[arg-type]
    return set(session.exec(query).all())  # type: ignore[arg-type]


def test_each_role_sees_exactly_its_scope(session: Session) -> None:
    w = _world(session)
    q = w["q"]
    ids = {name: question.id for name, question in q.items()}  # type: ignore[attr-defined]
    admin = make_user(session, Role.admin)
    operator = make_user(session, Role.operator, institution_ids=[w["school"].id, w["clinic"].id])  # type: ignore[attr-defined]
    town_supervisor = make_user(session, Role.supervisor, territory_id=w["town_a"].id)  # type: ignore[attr-defined]
    region_supervisor = make_user(session, Role.supervisor, territory_id=w["region"].id)  # type: ignore[attr-defined]
    ministry_supervisor = make_user(session, Role.supervisor, institution_id=w["ministry"].id)  # type: ignore[attr-defined]

    assert _visible(session, admin) >= set(ids.values())
    assert _visible(session, operator) == {ids["school"], ids["clinic"]}
    # A territory subtree: the town and its village, not the region's own ministry.
    assert _visible(session, town_supervisor) == {ids["school"], ids["club"]}
    assert _visible(session, region_supervisor) == set(ids.values())
    # An institution subtree: the ministry and the school under it.
    assert _visible(session, ministry_supervisor) == {ids["ministry"], ids["school"]}


def test_an_operator_token_gets_404_for_another_institutions_question(
    client: TestClient, session: Session
) -> None:
    w = _world(session)
    operator = make_user(session, Role.operator, institution_ids=[w["school"].id])  # type: ignore[attr-defined]
    headers = auth_headers(session, operator)
    own, foreign = w["q"]["school"], w["q"]["clinic"]  # type: ignore[index]
    assert client.get(f"/api/v1/questions/{own.id}", headers=headers).status_code == 200
    response = client.get(f"/api/v1/questions/{foreign.id}", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "question_not_found"
    listed = client.get("/api/v1/questions", headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [own.id]


def test_a_supervisor_lists_exactly_the_subtree(client: TestClient, session: Session) -> None:
    w = _world(session)
    supervisor = make_user(session, Role.supervisor, territory_id=w["town_a"].id)  # type: ignore[attr-defined]
    listed = client.get("/api/v1/questions", headers=auth_headers(session, supervisor)).json()
    assert {item["id"] for item in listed["items"]} == {w["q"]["school"].id, w["q"]["club"].id}  # type: ignore[index]


def test_revoked_token_is_refused(client: TestClient, session: Session, clock: object) -> None:
    user = make_user(session, Role.admin)
    token, plain = tokens.create_token(session, user)
    assert token.token_hash != plain and plain not in token.token_hash
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/territories", headers=headers).status_code == 200
    assert token.id is not None
    tokens.revoke_token(session, token.id, datetime(2026, 3, 10, tzinfo=UTC))
    assert client.get("/api/v1/territories", headers=headers).status_code == 401
