"""Shared by the question page's tests: signing a test client in, reading the CSRF token,
and making the question's world (a region with two municipalities and their institutions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.models import LoginSession, Role, User
from app.directory.models import Institution, Platform, TerritoryKind
from app.questions.models import Question
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_institution, make_territory
from tests.outbox.outbox_helpers import VK_GROUP, question_on

HTMX = {"HX-Request": "true"}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, user: User, session: Session) -> str:
    """Signs the client in as `user` through /login; returns the session's CSRF token
    (what every page's forms carry)."""
    token = csrf(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    latest = session.exec(
        select(LoginSession)
        .where(LoginSession.user_id == user.id)
        .order_by(col(LoginSession.id).desc())
    ).first()
    assert latest is not None
    return latest.csrf_token


@dataclass
class World:
    school: Institution
    hospital: Institution
    far: Institution  # another municipality of the same region
    operator: User
    colleague: User
    other_operator: User  # the hospital's
    question: Question


def make_world(session: Session, clock: FrozenClock) -> World:
    region = make_territory(session, name="Челябинская область", kind=TerritoryKind.region)
    town = make_territory(session, name="Чебаркульский городской округ", parent_id=region.id)
    village = make_territory(session, name="Кунашакский район", parent_id=region.id)
    school = make_institution(session, name="Школа № 3 г. Чебаркуль", territory_id=town.id)
    hospital = make_institution(session, name="Чебаркульская ГБ", territory_id=town.id)
    far = make_institution(
        session, name="Администрация Кунашакского района", territory_id=village.id
    )
    operator = make_user(
        session, Role.operator, login="anna", name="Анна Петрова", institution_ids=[school.id]
    )
    colleague = make_user(
        session, Role.operator, login="olga", name="Ольга Сидорова", institution_ids=[school.id]
    )
    other = make_user(
        session, Role.operator, login="ivan", name="Иван Ким", institution_ids=[hospital.id]
    )
    question = question_on(
        session,
        Platform.vk,
        {"method": "wall", "owner_id": f"-{VK_GROUP}", "post_id": "1542", "comment_id": "9187"},
        external_id=f"wall:-{VK_GROUP}_1542:9187",
        thread_key=f"wall:-{VK_GROUP}_1542",
        page_external_id=VK_GROUP,
        created_at=clock() - timedelta(hours=1),
        institution_id=school.id,
    )
    session.commit()
    return World(school, hospital, far, operator, colleague, other, question)
