from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session

from app.auth import service, tokens
from app.auth.models import Role, User, UserCreate

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def make_user(session: Session, role: Role = Role.admin, **overrides: Any) -> User:
    data: dict[str, Any] = {"login": f"user{next(_seq)}", "role": role, "password": PASSWORD}
    data.update(overrides)
    return service.create_user(session, UserCreate(**data))


def make_token(session: Session, user: User) -> str:
    _, plain = tokens.create_token(session, user, "test")
    return plain


def auth_headers(session: Session, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(session, user)}"}
