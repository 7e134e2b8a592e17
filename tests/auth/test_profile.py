"""The profile page: name, e-mail, time zone and password, each a form with the CSRF
token that answers 422 with an error summary when something needs fixing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import login_sessions, profile, service
from app.auth.models import LoginSession, Role, User
from tests.factories.auth import PASSWORD, make_user


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@pytest.fixture
def signed_in(client: TestClient, session: Session) -> tuple[User, str]:
    user = make_user(session, Role.admin, login="petrova", name="Петрова А. П.")
    token = _csrf(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"login": "petrova", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return user, _csrf(client.get("/profile").text)


def test_the_profile_shows_who_you_are_and_every_form(
    client: TestClient, signed_in: tuple[User, str]
) -> None:
    page = client.get("/profile")
    assert page.status_code == 200
    for text in ("Профиль", "petrova", "Администратор", "Петрова А. П.", "Сменить пароль"):
        assert text in page.text
    assert 'for="email"' in page.text and 'for="timezone"' in page.text
    assert "МСК+2 — Екатеринбург" in page.text
    # No alert bot configured: the page says so instead of offering a dead button.
    assert "администратор Отклика ещё не подключил бота" in page.text


def test_anonymous_is_sent_to_sign_in_and_back(client: TestClient) -> None:
    answer = client.get("/profile", follow_redirects=False)
    assert answer.headers["location"] == "/login?next=%2Fprofile"


def test_saving_name_email_and_zone(
    client: TestClient, session: Session, signed_in: tuple[User, str]
) -> None:
    user, token = signed_in
    answer = client.post(
        "/profile",
        data={
            "csrf_token": token,
            "name": "  Петрова Анна  ",
            "email": "petrova@school3.ru",
            "timezone": "Asia/Yekaterinburg",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/profile?done=profile"
    session.refresh(user)
    assert (user.name, user.email, user.timezone) == (
        "Петрова Анна",
        "petrova@school3.ru",
        "Asia/Yekaterinburg",
    )
    page = client.get(answer.headers["location"])
    assert "Изменения сохранены." in page.text
    assert '<option value="Asia/Yekaterinburg" selected>' in page.text
    # Clearing the e-mail and the zone is allowed: none, and the institution's zone.
    client.post("/profile", data={"csrf_token": token, "name": "Петрова Анна"})
    session.refresh(user)
    assert user.email is None and user.timezone is None


def test_mistakes_come_back_with_422_a_summary_and_every_value_kept(
    client: TestClient, session: Session, signed_in: tuple[User, str]
) -> None:
    user, token = signed_in
    answer = client.post(
        "/profile",
        data={"csrf_token": token, "name": " ", "email": "petrova-at-school", "timezone": "Mars"},
    )
    assert answer.status_code == 422
    text = answer.text
    assert "<title>Ошибка: Профиль" in text
    assert "Исправьте ошибки" in text
    assert '<a href="#name">Введите имя' in text
    assert '<a href="#email">Введите адрес почты в виде name@example.ru</a>' in text
    assert "Выберите часовой пояс из списка" in text
    assert 'value="petrova-at-school"' in text
    session.refresh(user)
    assert user.name == "Петрова А. П." and user.email is None


def test_forms_without_the_csrf_token_are_refused(
    client: TestClient, session: Session, signed_in: tuple[User, str]
) -> None:
    user, _ = signed_in
    for path, data in (
        ("/profile", {"name": "Взлом"}),
        ("/profile/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
        ("/profile/telegram", {}),
        ("/profile/telegram/unlink", {}),
    ):
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    session.refresh(user)
    assert user.name == "Петрова А. П."


def test_changing_the_password_needs_the_current_one_and_ends_other_sign_ins(
    client: TestClient, session: Session, signed_in: tuple[User, str]
) -> None:
    user, token = signed_in
    other_device = login_sessions.login(session, "petrova", PASSWORD, user.created_at, 12)
    assert other_device is not None
    wrong = client.post(
        "/profile/password",
        data={
            "csrf_token": token,
            "current_password": "not it",
            "new_password": "short",
            "repeat_password": "short",
        },
    )
    assert wrong.status_code == 422
    assert "Текущий пароль введён неверно" in wrong.text
    assert "Пароль должен быть не короче 10 знаков" in wrong.text
    assert "not it" not in wrong.text  # passwords are never sent back
    mismatch = client.post(
        "/profile/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "new long password",
            "repeat_password": "new long pasword",
        },
    )
    assert mismatch.status_code == 422
    assert "Пароли не совпадают" in mismatch.text
    assert service.verify_password(PASSWORD, user.password_hash)

    done = client.post(
        "/profile/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "new long password",
            "repeat_password": "new long password",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    session.refresh(user)
    assert user.password_hash and user.password_hash.startswith("$argon2")
    assert service.verify_password("new long password", user.password_hash)
    # This browser stays signed in; the other device's sign-in is over.
    assert client.get("/profile").status_code == 200
    sessions = session.exec(select(LoginSession).where(col(LoginSession.user_id) == user.id)).all()
    assert len(sessions) == 1


def test_the_chosen_zone_is_how_alert_times_are_read(session: Session) -> None:
    user = make_user(session, Role.admin)
    assert service.user_timezone(session, user) == "Europe/Moscow"
    profile.update_profile(session, user, name="Админ", email="", timezone="Asia/Omsk")
    assert service.user_timezone(session, user) == "Asia/Omsk"
