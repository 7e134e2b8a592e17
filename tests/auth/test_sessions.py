"""Sessions and sign-in (issue 13): sessions expire when idle and at their absolute
lifetime, end on a password change, reset or deactivation; cookies are HttpOnly,
SameSite=Lax and Secure over HTTPS; the password policy; the sign-in throttle is shared
by every process through the database and lifts after its window."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth import passwords, profile, service, throttle, users
from app.auth.models import Role, UserCreate
from app.core.config import Settings
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _sign_in(client: TestClient, login: str, password: str = PASSWORD) -> object:
    token = _csrf(client.get("/login").text)
    return client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def _signed_in(client: TestClient) -> bool:
    return client.get("/profile", follow_redirects=False).status_code == 200


def test_an_idle_session_ends_and_use_keeps_it_alive(
    client: TestClient, session: Session, clock: FrozenClock, settings: Settings
) -> None:
    make_user(session, Role.admin, login="idle")
    assert _sign_in(client, "idle").status_code == 303  # type: ignore[attr-defined]
    idle = settings.session_idle_minutes
    clock.advance(minutes=idle - 5)
    assert _signed_in(client)  # used: the idle time starts again
    clock.advance(minutes=idle - 5)
    assert _signed_in(client)
    clock.advance(minutes=idle + 1)
    answer = client.get("/profile", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    client: TestClient, session: Session, clock: FrozenClock, settings: Settings
) -> None:
    make_user(session, Role.admin, login="busy")
    _sign_in(client, "busy")
    for _ in range(settings.session_hours - 1):
        clock.advance(minutes=60)
        assert _signed_in(client)
    clock.advance(minutes=61)
    assert not _signed_in(client)


def test_cookies_are_httponly_lax_and_secure_over_https(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    make_user(session, Role.admin, login="cookies")
    answer = _sign_in(client, "cookies")
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith("otklik_session=")
    for flag in ("HttpOnly", "SameSite=lax", "Secure"):
        assert flag.lower() in cookie.lower(), cookie
    # Plain HTTP to a server whose public URL is http: no Secure flag (it would never
    # come back); the setting can force it.
    settings.base_url = "http://127.0.0.1:8000"
    plain = TestClient(app, base_url="http://127.0.0.1:8000")
    cookie = _sign_in(plain, "cookies").headers["set-cookie"]  # type: ignore[attr-defined]
    assert "httponly" in cookie.lower() and "secure" not in cookie.lower()
    settings.cookie_secure = True
    cookie = plain.get("/login").headers["set-cookie"]
    assert cookie.startswith("otklik_csrf=") and "secure" in cookie.lower()


def test_password_change_reset_and_deactivation_end_sessions(
    app: FastAPI, client: TestClient, session: Session, clock: FrozenClock
) -> None:
    admin = make_user(session, Role.admin, login="boss")
    person = make_user(session, Role.admin, login="worker")
    other = TestClient(app, base_url="https://otklik.example.ru")
    _sign_in(client, "worker")
    _sign_in(other, "worker")
    # A change in the profile keeps this browser and ends the other.
    token = _csrf(client.get("/profile").text)
    new = "a new long passphrase"
    changed = client.post(
        "/profile/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": new,
            "repeat_password": new,
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert _signed_in(client) and not _signed_in(other)
    # A reset by an administrator ends every session.
    users.reset_password(session, person, by=admin, now=clock())
    session.commit()
    assert not _signed_in(client)
    credential = users.reset_password(session, person, by=admin, now=clock())
    assert credential.password
    _sign_in(client, "worker", credential.password)
    assert _signed_in(client)
    users.deactivate(session, person, by=admin, now=clock())
    session.commit()
    assert not _signed_in(client)
    refused = _sign_in(client, "worker", credential.password)
    assert refused.status_code == 401  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("password", "login", "problem"),
    [
        ("short", "x", "не короче 10"),
        ("ivanova.ap", "ivanova.ap", "не должен совпадать с логином"),
        ("IVANOVA.AP", "ivanova.ap", "не должен совпадать с логином"),
        ("1234567890", "x", "распространён"),
        ("Qwerty123456", "x", "распространён"),
        ("йцукенгшщз", "x", "распространён"),
        ("aaaaaaaaaaaa", "x", "распространён"),
        ("a" * 300, "x", "длиннее 256"),
    ],
)
def test_the_password_policy_says_how_to_fix(password: str, login: str, problem: str) -> None:
    found = passwords.problem(password, login)
    assert found is not None and problem in found


def test_good_passwords_pass_the_policy() -> None:
    for password in (PASSWORD, "рыжий кот на крыше", "9-Tundra-Lamp-Ocean"):
        assert passwords.problem(password, "ivanova") is None
    assert "1qaz2wsx3edc" in passwords.common_passwords()


def test_the_policy_applies_to_creation_and_the_profile(session: Session) -> None:
    admin = make_user(session, Role.admin)
    with pytest.raises(service.FormInvalid) as refused:
        users.create(
            session,
            UserCreate(login="weak", role=Role.admin, password="password123"),
            by=admin,
            now=admin.created_at,
        )
    assert "распространён" in refused.value.errors["password"]
    with pytest.raises(service.FormInvalid) as refused:
        profile.change_password(
            session, admin, current=PASSWORD, new=admin.login, repeat=admin.login
        )
    assert "new_password" in refused.value.errors


# --- the throttle, shared by processes ---------------------------------------------------


@pytest.fixture
def two_processes(
    settings: Settings, live_engine: sa.Engine, clock: FrozenClock
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two applications on one committed database, as two `otklik serve` processes."""
    from app.main import create_app

    apps = [
        create_app(settings, engine=live_engine, clock=clock, run_worker=False) for _ in range(2)
    ]
    with (
        TestClient(apps[0], base_url="https://otklik.example.ru") as a,
        TestClient(apps[1], base_url="https://otklik.example.ru") as b,
    ):
        yield a, b


def test_the_throttle_is_shared_by_processes_and_lifts_after_its_window(
    two_processes: tuple[TestClient, TestClient], db: Session, clock: FrozenClock
) -> None:
    make_user(db, Role.admin, login="target")
    db.commit()
    first, second = two_processes
    for n in range(throttle.PER_LOGIN):
        answer = _sign_in(first if n % 2 else second, "target", f"guess number {n}")
        assert answer.status_code == 401  # type: ignore[attr-defined]
    for client in (first, second):
        locked = _sign_in(client, "target")  # even the right password waits
        assert locked.status_code == 429  # type: ignore[attr-defined]
        assert int(locked.headers["retry-after"]) > 0  # type: ignore[attr-defined]
        assert "Слишком много попыток" in locked.text  # type: ignore[attr-defined]
    clock.advance(minutes=throttle.WINDOW.total_seconds() / 60 + 1)
    assert _sign_in(second, "target").status_code == 303  # type: ignore[attr-defined]
    failed = db.execute(
        sa.text("SELECT count(*) FROM audit_event WHERE action = 'sign_in.failed'")
    ).scalar_one()
    assert failed == throttle.PER_LOGIN
