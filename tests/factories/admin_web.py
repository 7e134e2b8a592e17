"""Signing a test client in as an administrator (or another role) through the login form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role, User
from tests.factories.auth import PASSWORD, make_user


def sign_in(
    client: TestClient, session: Session, role: Role = Role.admin, **scope: object
) -> tuple[User, str]:
    """Creates a user of `role`, signs `client` in; returns the user and the CSRF token."""
    user = make_user(session, role, **scope)
    session.commit()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/profile").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    return user, csrf.group(1)
