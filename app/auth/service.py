"""Users and their passwords (hashing, creating a user with a role and scope), the
zone a user reads times in, and the one scoping helper every query uses.

Sign-in sessions are `app.auth.login_sessions`, API tokens `app.auth.tokens`, a user's
own profile `app.auth.profile`, administrators' user management `app.auth.users`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from pwdlib import PasswordHash
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from app.auth import passwords
from app.auth.models import (
    Role,
    User,
    UserCreate,
    UserInstitution,
    UserRead,
)
from app.core.errors import Conflict, Invalid, NotFound
from app.directory.models import Institution, Sector, Territory

_hasher = PasswordHash.recommended()
# Verifying against this keeps a wrong login as slow as a wrong password. Made on first
# use: hashing costs half a second of CPU, which every `otklik` command paid at start.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("otklik-dummy-password")
    return _DUMMY_HASH


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _dummy_hash())
        return False
    return _hasher.verify(password, password_hash)


def generate_password() -> str:
    # Readable: no look-alike characters, 14 characters of ~5.6 bits each.
    alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY345679"
    return "".join(secrets.choice(alphabet) for _ in range(14))


def get_user_by_login(session: Session, login: str) -> User | None:
    return session.exec(select(User).where(User.login == login)).first()


def institution_ids_of(session: Session, user_id: int) -> list[int]:
    rows = session.exec(
        select(UserInstitution.institution_id).where(UserInstitution.user_id == user_id)
    ).all()
    return sorted(rows)


def check_sector(sector: str | None) -> None:
    """Invalid for a sector code the directory does not know."""
    if sector is not None and sector not in Sector.__members__:
        raise Invalid(f"Неизвестная отрасль: {sector}", code="invalid_sector")


def create_user(session: Session, data: UserCreate) -> User:
    """Create a user with a role and scope. Raises Conflict, Invalid, NotFound."""
    if get_user_by_login(session, data.login) is not None:
        raise Conflict(f"Пользователь «{data.login}» уже существует", code="login_taken")
    institution_ids = list(dict.fromkeys(data.institution_ids))
    if data.role == Role.operator and not institution_ids and data.institution_id is None:
        raise Invalid("Оператору нужно указать хотя бы одно учреждение", code="scope_required")
    if data.role == Role.operator and data.institution_id is not None:
        institution_ids.append(data.institution_id)
    if data.role == Role.supervisor and data.territory_id is None and data.institution_id is None:
        raise Invalid("Куратору нужно указать территорию или учреждение", code="scope_required")
    for institution_id in institution_ids:
        if session.get(Institution, institution_id) is None:
            raise NotFound(f"Учреждение {institution_id} не найдено")
    if data.territory_id is not None and session.get(Territory, data.territory_id) is None:
        raise NotFound(f"Территория {data.territory_id} не найдена")
    check_sector(data.sector)
    if data.password and (why := passwords.problem(data.password, data.login)):
        raise Invalid(why, code="weak_password")
    user = User(
        login=data.login,
        name=data.name or data.login,
        role=data.role,
        password_hash=hash_password(data.password) if data.password else None,
        territory_id=data.territory_id if data.role == Role.supervisor else None,
        institution_id=data.institution_id if data.role == Role.supervisor else None,
        sector=data.sector if data.role == Role.supervisor else None,
        email=data.email,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    if data.role == Role.operator:
        for institution_id in dict.fromkeys(institution_ids):
            session.add(UserInstitution(user_id=user.id, institution_id=institution_id))
        session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Set a password that passes the policy (raises Invalid otherwise). The caller
    ends the user's other sessions where that is meant (`login_sessions.end_sessions`)."""
    if why := passwords.problem(password, user.login):
        raise Invalid(why, code="weak_password")
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()


def user_read(session: Session, user: User) -> UserRead:
    assert user.id is not None
    return UserRead(
        id=user.id,
        login=user.login,
        name=user.name,
        role=user.role,
        territory_id=user.territory_id,
        institution_id=user.institution_id,
        institution_ids=institution_ids_of(session, user.id),
        sector=user.sector,
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


# --- time zones and form errors ---------------------------------------------

# The zones of Russia, west to east, as the profile offers them (ui.md §8).
TIMEZONES: dict[str, str] = {
    "Europe/Kaliningrad": "Калининград",
    "Europe/Moscow": "Москва",
    "Europe/Samara": "Самара",
    "Asia/Yekaterinburg": "Екатеринбург",
    "Asia/Omsk": "Омск",
    "Asia/Krasnoyarsk": "Красноярск",
    "Asia/Irkutsk": "Иркутск",
    "Asia/Yakutsk": "Якутск",
    "Asia/Vladivostok": "Владивосток",
    "Asia/Magadan": "Магадан",
    "Asia/Kamchatka": "Камчатка",
}


def user_timezone(session: Session, user: User) -> str:
    """The zone a user reads times in: their own choice, else their territory's or
    their (first) institution's territory's, else Moscow."""
    if user.timezone:
        return user.timezone
    territory_id = user.territory_id
    institution_id = user.institution_id
    if territory_id is None and institution_id is None and user.id is not None:
        institution_id = next(iter(institution_ids_of(session, user.id)), None)
    if territory_id is None and institution_id is not None:
        institution = session.get(Institution, institution_id)
        territory_id = institution.territory_id if institution else None
    territory = session.get(Territory, territory_id) if territory_id is not None else None
    return territory.timezone if territory is not None else "Europe/Moscow"


class FormInvalid(Invalid):
    """Several fields may be wrong at once: `errors` maps each to how to fix it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(next(iter(errors.values())), code="invalid_form")
        self.errors = dict(errors)


# --- scope ------------------------------------------------------------------


def visible_institution_ids(user: User) -> sa.Select[Any] | None:
    """A subquery of the institution ids a user may see; None means everything (admin)."""
    if user.role == Role.admin:
        return None
    institution_id = col(Institution.id)
    if user.role == Role.operator:
        return sa.select(col(UserInstitution.institution_id)).where(
            col(UserInstitution.user_id) == user.id
        )
    # Supervisor: a territory subtree and/or an institution subtree.
    conditions: list[ColumnElement[bool]] = []
    if user.territory_id is not None:
        territory_path = (
            sa.select(col(Territory.path))
            .where(col(Territory.id) == user.territory_id)
            .scalar_subquery()
        )
        conditions.append(
            col(Institution.territory_id).in_(
                sa.select(col(Territory.id)).where(col(Territory.path).startswith(territory_path))
            )
        )
    if user.institution_id is not None:
        institution_path = (
            sa.select(col(Institution.path))
            .where(institution_id == user.institution_id)
            .scalar_subquery()
        )
        inner = sa.orm.aliased(Institution)
        conditions.append(
            institution_id.in_(
                sa.select(col(inner.id)).where(col(inner.path).startswith(institution_path))
            )
        )
    if user.sector is not None:
        # A sector department: that sector's institutions of the territory subtree
        # (or of the whole directory without a territory).
        sector = col(Institution.sector) == user.sector
        territorial = conditions[:1] if user.territory_id is not None else []
        return sa.select(institution_id).where(sa.and_(sector, *territorial))
    if not conditions:
        return sa.select(institution_id).where(sa.false())
    return sa.select(institution_id).where(sa.or_(*conditions))


def scope_filter(user: User, institution_column: Any) -> ColumnElement[bool]:
    """The condition that limits any query with an institution column to the user's scope.

    Every query that returns questions, messages or report figures applies it.
    """
    ids = visible_institution_ids(user)
    if ids is None:
        return sa.true()
    return col(institution_column).in_(ids)


def can_see_institution(session: Session, user: User, institution_id: int) -> bool:
    ids = visible_institution_ids(user)
    if ids is None:
        return True
    return (
        session.execute(sa.select(sa.literal(1)).where(sa.literal(institution_id).in_(ids))).first()
        is not None
    )
