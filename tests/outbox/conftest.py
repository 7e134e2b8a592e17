from __future__ import annotations

import pytest
from sqlmodel import Session

from app.auth.models import Role, User
from tests.factories.auth import make_user


@pytest.fixture
def operator(session: Session) -> User:
    return make_user(session, Role.admin, name="Оператор Анна")
