"""Sign-in throttling: failed attempts per login and per client address, kept in the
database so that every web process counts the same ones."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth import login_sessions, service, throttle
from app.auth.models import LoginFailure, Role
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user


def _attempt(client: TestClient, login: str, password: str) -> object:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


def _failures(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(LoginFailure)).scalar_one())


def test_the_eleventh_guess_at_a_login_is_refused_without_hashing(
    client: TestClient, session: Session, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(session, Role.admin, login="teacher")
    for _ in range(throttle.PER_LOGIN):
        response = _attempt(client, "teacher", "guess")
        assert response.status_code == 401  # type: ignore[attr-defined]
    assert _failures(session) == throttle.PER_LOGIN

    hashed: list[str] = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda *a: hashed.append("x") or real(*a))
    refused = _attempt(client, "teacher", PASSWORD)  # even the right password waits
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "Слишком много попыток входа. Попробуйте через 15 мин." in refused.text  # type: ignore[attr-defined]
    assert refused.headers["Retry-After"] == "900"  # type: ignore[attr-defined]
    assert hashed == []
    # The refusal itself is not counted: waiting is enough.
    assert _failures(session) == throttle.PER_LOGIN

    clock.advance(minutes=10)
    waiting = _attempt(client, "Teacher ", PASSWORD)  # the same login however typed
    assert "через 5 мин." in waiting.text  # type: ignore[attr-defined]
    clock.advance(minutes=5, seconds=1)
    assert _attempt(client, "teacher", PASSWORD).status_code == 303  # type: ignore[attr-defined]


def test_a_success_clears_the_login_but_not_the_address(
    session: Session, clock: FrozenClock
) -> None:
    make_user(session, Role.admin, login="teacher")
    now = clock()
    for _ in range(throttle.PER_LOGIN - 1):
        throttle.record_failure(session, "teacher", "10.0.0.1", now)
    assert login_sessions.login(session, "teacher", PASSWORD, now, 12, address="10.0.0.1")
    throttle.check(session, "teacher", "10.0.0.1", now)  # the login's count started again
    rows = session.execute(sa.select(LoginFailure.address)).scalars().all()
    assert rows == []
    for n in range(throttle.PER_ADDRESS - 1):
        throttle.record_failure(session, f"user{n}", "10.0.0.1", now)
    # A valid account signing in does not wash the address's guesses away.
    assert login_sessions.login(session, "teacher", PASSWORD, now, 12, address="10.0.0.1")
    throttle.record_failure(session, "user-last", "10.0.0.1", now)
    with pytest.raises(throttle.TooManyAttempts):
        throttle.check(session, "teacher", "10.0.0.1", now)


def test_one_address_guessing_many_logins_is_stopped(session: Session, clock: FrozenClock) -> None:
    now = clock()
    for n in range(throttle.PER_ADDRESS):
        assert (
            login_sessions.login(session, f"nobody{n}", "x", now, 12, address="203.0.113.9") is None
        )
    with pytest.raises(throttle.TooManyAttempts) as refused:
        login_sessions.login(session, "someone-else", "x", now, 12, address="203.0.113.9")
    assert refused.value.minutes == 15
    # Another address is not affected, nor is a login that was never guessed at.
    assert (
        login_sessions.login(session, "someone-else", "x", now, 12, address="198.51.100.1") is None
    )


def test_old_failures_leave_the_window_and_the_table(session: Session, clock: FrozenClock) -> None:
    start = clock()
    for _ in range(throttle.PER_LOGIN):
        throttle.record_failure(session, "teacher", "10.0.0.1", start)
    with pytest.raises(throttle.TooManyAttempts):
        throttle.check(session, "teacher", "10.0.0.2", start + timedelta(minutes=14))
    later = start + throttle.WINDOW + timedelta(seconds=1)
    throttle.check(session, "teacher", "10.0.0.2", later)
    throttle.record_failure(session, "other", "10.0.0.3", later)
    assert _failures(session) == 1
