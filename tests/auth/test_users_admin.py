"""/admin/users: list and search, create (password or invitation link shown once), edit
role and scope, deactivate, reset; the invitation page; 404 for everyone but admins."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import login_sessions, service
from app.auth.models import ApiToken, AuditEvent, LoginSession, Role, User
from tests.factories.auth import PASSWORD, make_token, make_user
from tests.factories.directory import make_institution, make_territory


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def _sign_in(client: TestClient, login: str, password: str = PASSWORD) -> None:
    token = _csrf(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def admin(client: TestClient, session: Session) -> tuple[User, str]:
    user = make_user(session, Role.admin, login="chief", name="Главный А. А.")
    _sign_in(client, "chief")
    return user, _csrf(client.get("/profile").text)


def _people(html: str) -> str:
    return html[html.index('<section id="people"') :]


def _audit(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        ).all()
    )


def test_list_searches_and_filters(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    school = make_institution(session, name="Школа № 7")
    make_user(session, Role.operator, login="ivanova", name="Иванова", institution_ids=[school.id])
    off = make_user(session, Role.admin, login="old.admin", name="Бывший")
    off.is_active = False
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert "Иванова" in page.text and "Школа № 7" in page.text and "Главный" in page.text
    assert "Бывший" not in _people(page.text)  # only active people by default
    found = _people(client.get("/admin/users", params={"q": "ИВАН"}).text)
    assert "Иванова" in found and "Главный" not in found
    # htmx gets the list alone, the filters' URL holds the state.
    fragment = client.get("/admin/users", params={"active": "0"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="people"')
    assert "Бывший" in fragment.text and "Иванова" not in fragment.text
    nobody = client.get("/admin/users", params={"q": "никого-нет"})
    assert "Никого не нашлось" in nobody.text


def test_create_an_operator_with_a_one_time_password_then_they_sign_in(
    app: object, client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    _, csrf = admin
    school = make_institution(session, name="Школа № 3")
    session.commit()  # a refused form rolls back to the last commit
    form = client.get("/admin/users/new")
    assert form.status_code == 200 and "Школа № 3" in form.text
    wrong = client.post(
        "/admin/users/new",
        data={"csrf_token": csrf, "login": "петров", "name": "<b>Петров</b>", "role": "operator"},
    )
    assert wrong.status_code == 422
    assert "Ошибка: " in wrong.text and "Исправьте ошибки" in wrong.text
    assert "Логин — от 2 до 150 латинских букв" in wrong.text
    assert "Выберите хотя бы одно учреждение" in wrong.text
    assert "&lt;b&gt;Петров&lt;/b&gt;" in wrong.text  # the value is kept, escaped
    created = client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf,
            "login": "petrov",
            "name": "Петров П. П.",
            "role": "operator",
            "institution_ids": [str(school.id)],
            "credential": "password",
        },
    )
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    password = re.search(r'<code id="secret">([^<]+)</code>', created.text)
    assert password, created.text
    user = service.get_user_by_login(session, "petrov")
    assert user is not None and service.institution_ids_of(session, user.id or 0) == [school.id]
    assert password.group(1) not in client.get(f"/admin/users/{user.id}").text
    from fastapi.testclient import TestClient as Client

    other = Client(app, base_url="https://otklik.example.ru")  # type: ignore[arg-type]
    _sign_in(other, "petrov", password.group(1))
    assert other.get("/inbox").status_code == 200
    # An operator meets the same 404 as a missing page on every admin address.
    missing = other.get("/admin/no-such-page")
    for path in ("/admin/users", f"/admin/users/{user.id}", "/admin/tokens", "/admin/audit"):
        answer = other.get(path)
        assert answer.status_code == 404 == missing.status_code, path
    (entry,) = _audit(session, "user.create")
    assert entry.object_id == str(user.id) and entry.address == "testclient"


def test_create_with_an_invitation_link_and_use_it(
    client: TestClient,
    session: Session,
    admin: tuple[User, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    _, csrf = admin
    created = client.post(
        "/admin/users/new",
        data={"csrf_token": csrf, "login": "guest", "role": "admin", "credential": "invite"},
    )
    assert created.status_code == 200, created.text
    link = re.search(r'<code id="secret">[^<]*/invite\?token=([^<]+)</code>', created.text)
    assert link, created.text
    visitor = TestClient(client.app, base_url="https://otklik.example.ru")
    plain = link.group(1)
    page = visitor.get("/invite", params={"token": plain})
    assert page.status_code == 200 and "Придумайте пароль" in page.text and "guest" in page.text
    token = _csrf(page.text)
    weak = visitor.post(
        "/invite",
        data={"token": plain, "csrf_token": token, "password": "guest", "repeat_password": "guest"},
    )
    assert weak.status_code == 422 and "не короче 10 знаков" in weak.text
    forged = visitor.post(
        "/invite",
        data={
            "token": plain,
            "csrf_token": "forged",
            "password": PASSWORD,
            "repeat_password": PASSWORD,
        },
    )
    assert forged.status_code == 403
    done = visitor.post(
        "/invite",
        data={
            "token": plain,
            "csrf_token": token,
            "password": PASSWORD,
            "repeat_password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?done=password"
    assert "Пароль сохранён" in visitor.get("/login?done=password").text
    _sign_in(visitor, "guest")
    # The link is used up.
    assert visitor.get("/invite", params={"token": plain}).status_code == 404
    assert "Ссылка не работает" in client.get("/invite?token=made-up").text
    assert client.get("/invite").status_code == 404
    # The request log records paths: the link's token is in the query, never logged
    # (httpx's lines are the test client's own requests).
    logged = [
        repr(getattr(r, "fields", "")) + r.getMessage() for r in caplog.records if r.name != "httpx"
    ]
    assert any("/invite" in line for line in logged)
    assert not [line for line in logged if plain in line]


def test_edit_role_and_scope_deactivate_and_reset(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    _, csrf = admin
    region = make_territory(session, name="Район")
    school = make_institution(session, territory_id=region.id, name="Школа")
    person = make_user(session, Role.operator, login="sidorov", institution_ids=[school.id])
    token = make_token(session, person)
    login_sessions.login(session, "sidorov", PASSWORD, person.created_at, 12)
    session.commit()  # a refused form rolls back to the last commit
    url = f"/admin/users/{person.id}"
    page = client.get(url)
    assert page.status_code == 200 and "sidorov" in page.text and "Школа" in page.text
    no_scope = client.post(
        url, data={"csrf_token": csrf, "name": "Сидоров", "role": "supervisor", "scope": ""}
    )
    assert no_scope.status_code == 422 and "Выберите территорию или учреждение" in no_scope.text
    saved = client.post(
        url,
        data={
            "csrf_token": csrf,
            "name": "Сидоров",
            "role": "supervisor",
            "scope": f"t:{region.id}",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{url}?done=saved"
    session.refresh(person)
    assert person.role == Role.supervisor and person.territory_id == region.id
    assert "Изменения сохранены" in client.get(saved.headers["location"]).text
    (update,) = _audit(session, "user.update")
    assert update.before is not None and update.before["role"] == "operator"
    assert update.after is not None and update.after["territory_id"] == region.id

    off = client.post(f"{url}/deactivate", data={"csrf_token": csrf}, follow_redirects=False)
    assert off.status_code == 303
    session.refresh(person)
    assert not person.is_active
    assert session.exec(select(LoginSession).where(LoginSession.user_id == person.id)).all() == []
    revoked = session.exec(select(ApiToken).where(ApiToken.user_id == person.id)).one()
    assert revoked.revoked_at is not None and token
    page = client.get(url)
    assert "Отключён" in page.text and "Включить пользователя" in page.text
    refused = client.post(f"{url}/reset", data={"csrf_token": csrf, "credential": "password"})
    assert refused.status_code == 422 and "сначала включите" in refused.text
    client.post(f"{url}/activate", data={"csrf_token": csrf}, follow_redirects=False)
    reset = client.post(f"{url}/reset", data={"csrf_token": csrf, "credential": "password"})
    assert reset.status_code == 200 and "Пароль пользователя «sidorov» сброшен" in reset.text
    session.refresh(person)
    new = re.search(r'<code id="secret">([^<]+)</code>', reset.text)
    assert new and service.verify_password(new.group(1), person.password_hash)
    assert [e.action for e in _audit(session, "user.password_reset")] == ["user.password_reset"]


def test_an_admin_cannot_switch_themselves_off(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    me, csrf = admin
    answer = client.post(f"/admin/users/{me.id}/deactivate", data={"csrf_token": csrf})
    assert answer.status_code == 422 and "Нельзя отключить свою учётную запись" in answer.text
    session.refresh(me)
    assert me.is_active
    assert client.get("/admin/users/987654321").status_code == 404
