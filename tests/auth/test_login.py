"""Sign-in by session cookie, with CSRF protection on every form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from tests.factories.auth import PASSWORD, make_user


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


def test_login_page_is_russian_and_has_the_documented_fields(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert "Вход" in page.text
    assert 'name="login"' in page.text and 'name="password"' in page.text
    _csrf(page.text)


def test_sign_in_then_inbox_then_sign_out(client: TestClient, session: Session) -> None:
    user = make_user(session, Role.admin, login="ivanova", name="Иванова")
    assert client.get("/inbox", follow_redirects=False).headers["location"].startswith("/login")
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={"login": "ivanova", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    inbox = client.get("/inbox")
    assert inbox.status_code == 200
    assert "Очередь" in inbox.text and user.name in inbox.text
    logout_token = _csrf(inbox.text)
    # A form without the token is refused.
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert (
        client.post(
            "/logout", data={"csrf_token": logout_token}, follow_redirects=False
        ).status_code
        == 303
    )
    assert client.get("/inbox", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("login", "password"), [("ivanova", "wrong password"), ("nobody", PASSWORD)]
)
def test_wrong_credentials_are_refused(
    client: TestClient, session: Session, login: str, password: str
) -> None:
    make_user(session, Role.admin, login="ivanova")
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login", data={"login": login, "password": password, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Неверный логин или пароль" in response.text


def test_login_without_csrf_is_refused(client: TestClient, session: Session) -> None:
    make_user(session, Role.admin, login="ivanova")
    client.get("/login")
    response = client.post(
        "/login", data={"login": "ivanova", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403


def test_passwords_are_argon2(session: Session) -> None:
    user = make_user(session, Role.admin)
    assert user.password_hash is not None and user.password_hash.startswith("$argon2")


def test_next_parameter_cannot_leave_the_site(client: TestClient, session: Session) -> None:
    make_user(session, Role.admin, login="ivanova")
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "login": "ivanova",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/inbox"


# --- the deep link survives sign-in ------------------------------------------------------


def test_a_deep_link_keeps_its_query_through_sign_in(client: TestClient, session: Session) -> None:
    make_user(session, Role.admin, login="ivanova")
    deep = "/inbox?tab=overdue&platform=vk"
    bounced = client.get(deep, follow_redirects=False)
    assert bounced.status_code == 303
    location = bounced.headers["location"]
    assert location == "/login?next=%2Finbox%3Ftab%3Doverdue%26platform%3Dvk"
    form = client.get(location)
    assert 'name="next" value="/inbox?tab=overdue&amp;platform=vk"' in form.text
    response = client.post(
        "/login",
        data={
            "login": "ivanova",
            "password": PASSWORD,
            "csrf_token": _csrf(form.text),
            "next": deep,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == deep


def test_an_htmx_request_sends_back_to_the_page_shown_not_the_fragment(
    client: TestClient,
) -> None:
    response = client.get(
        "/notifications/bell",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "https://otklik.example.ru/inbox?tab=mine&q=%D0%B3%D0%B0%D0%B7",
        },
        follow_redirects=False,
    )
    assert response.headers["HX-Redirect"] == (
        "/login?next=%2Finbox%3Ftab%3Dmine%26q%3D%25D0%25B3%25D0%25B0%25D0%25B7"
    )
    # Another site's address in the header is not believed.
    response = client.get(
        "/notifications/bell",
        headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/inbox"},
        follow_redirects=False,
    )
    assert response.headers["HX-Redirect"] == "/login?next=%2Fnotifications%2Fbell"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/inbox",
        "/\\evil.example",
        "/\t/evil.example",
        "inbox",
        "",
    ],
)
def test_next_never_leaves_the_site(client: TestClient, session: Session, target: str) -> None:
    make_user(session, Role.admin, login="ivanova")
    form = client.get("/login", params={"next": target})
    assert 'name="next" value="/inbox"' in form.text
    response = client.post(
        "/login",
        data={
            "login": "ivanova",
            "password": PASSWORD,
            "csrf_token": _csrf(form.text),
            "next": target,
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/inbox"
