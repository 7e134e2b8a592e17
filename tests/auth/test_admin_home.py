"""The administration's front door: an administrator sees every section; to an operator
or a supervisor `/admin` is the same 404 page as an address that does not exist."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_institution


def _sign_in(client: TestClient, session: Session, role: Role) -> None:
    scope = {}
    if role != Role.admin:
        institution = make_institution(session)
        session.flush()
        scope = {"institution_id": institution.id}
    make_user(session, role, login=f"user-{role.value}", **scope)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login",
        data={"login": f"user-{role.value}", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_an_administrator_sees_every_section(client: TestClient, session: Session) -> None:
    _sign_in(client, session, Role.admin)
    page = client.get("/admin")
    assert page.status_code == 200
    for title in (
        "Территории и учреждения",
        "Подключить страницу",
        "Нормативы ответа",
        "Правила распределения",
        "Пользователи",
        "Журнал изменений",
    ):
        assert title in page.text
    # The top bar names the section the administrator is in.
    assert re.search(r'<a href="/admin"\s+aria-current="page">Управление</a>', page.text)


@pytest.mark.parametrize("role", [Role.operator, Role.supervisor])
def test_others_get_the_not_found_page(client: TestClient, session: Session, role: Role) -> None:
    _sign_in(client, session, role)
    page = client.get("/admin")
    missing = client.get("/admin-nothing-here")
    assert page.status_code == missing.status_code == 404
    assert "Управление" not in page.text


def test_anonymous_is_asked_to_sign_in(client: TestClient) -> None:
    answer = client.get("/admin", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fadmin"
