"""Signing a test client in as an administrator (or another role) without the login form.

The form and argon2 are tested elsewhere (tests/auth); admin page tests only need a
signed-in browser, so the user gets no password and a session row is written the way
`login_sessions.login` writes it: the cookie carries the token, the page its CSRF token."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.deps import SESSION_COOKIE
from app.auth.models import LoginSession, Role, User
from app.core.crypto import hash_token
from tests.factories.auth import make_user


def sign_in(
    client: TestClient, session: Session, role: Role = Role.admin, **scope: object
) -> tuple[User, str]:
    """Creates a user of `role` signed in on `client`; returns the user and the CSRF token."""
    user = make_user(session, role, password=None, **scope)
    assert user.id is not None
    plain, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    session.add(
        LoginSession(
            token_hash=hash_token(plain),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now - timedelta(days=400),
            expires_at=now + timedelta(days=400),
            last_seen_at=now,
        )
    )
    session.commit()
    client.cookies.set(SESSION_COOKIE, plain)
    return user, csrf
