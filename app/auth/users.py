"""Managing people: create with a one-time password or an invitation link, change role
and scope, deactivate (their sessions and tokens end at once), reset a password.

The admin pages and `/api/v1/users` call these same functions; each change is
written to the audit log (before → after) in the caller's transaction. The checks
that creating and changing a user share are `app.auth.user_checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.auth import audit, invitations, login_sessions, passwords, user_checks
from app.auth import service as auth_service
from app.auth.models import (
    ApiToken,
    Role,
    User,
    UserCreate,
    UserInstitution,
    UserInvitation,
    UserUpdate,
)
from app.core.errors import NotFound

FormInvalid = auth_service.FormInvalid

_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,149}$")


@dataclass(frozen=True, slots=True)
class Credential:
    """What to pass on to the new user, shown once: a password or an invitation token."""

    password: str | None = None
    invitation: str | None = None


def state(session: Session, user: User) -> dict[str, Any]:
    """A user's fields as the audit log records them (never the password hash)."""
    assert user.id is not None
    return {
        "login": user.login,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "institution_ids": auth_service.institution_ids_of(session, user.id),
        "territory_id": user.territory_id,
        "institution_id": user.institution_id,
        "sector": user.sector,
        "is_active": user.is_active,
    }


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("Пользователь не найден", code="not_found")
    return user


def list_users(
    session: Session,
    *,
    q: str = "",
    role: Role | None = None,
    active: bool | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> tuple[list[User], bool]:
    """Users by login (ascending id within it), filtered by a search on login, name or
    e-mail, role and activity; and whether more follow `limit`."""
    query = select(User).order_by(col(User.id)).limit(limit + 1)
    if q.strip():
        pattern = f"%{q.strip().lower()}%"
        query = query.where(
            sa.or_(
                func.lower(col(User.login)).like(pattern),
                func.lower(col(User.name)).like(pattern),
                func.lower(func.coalesce(col(User.email), "")).like(pattern),
            )
        )
    if role is not None:
        query = query.where(col(User.role) == role)
    if active is not None:
        query = query.where(col(User.is_active) == active)
    if after_id is not None:
        query = query.where(col(User.id) > after_id)
    rows = list(session.exec(query).all())
    return rows[:limit], len(rows) > limit


def count_users(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(col(User.role), func.count()).where(col(User.is_active)).group_by(col(User.role))
    ).all()
    return {str(role): n for role, n in rows}


# --- use cases --------------------------------------------------------------------


def create(
    session: Session,
    data: UserCreate,
    *,
    by: User,
    now: datetime,
    address: str | None = None,
    invite: bool = False,
) -> tuple[User, Credential]:
    """Create a user. With `data.password` that password is set (after the policy);
    otherwise a password is generated, or with `invite` an invitation link's token is
    made instead. Raises FormInvalid naming every field to fix."""
    login = data.login.strip()
    name = data.name.strip()
    email = (data.email or "").strip() or None
    errors: dict[str, str] = {}
    if not _LOGIN.match(login):
        errors["login"] = (
            "Логин — от 2 до 150 латинских букв, цифр и знаков . _ - @, "
            "начинается с буквы или цифры"
        )
    elif auth_service.get_user_by_login(session, login) is not None:
        errors["login"] = f"Логин «{login}» уже занят — выберите другой"
    user_checks.check_contact(name, email, errors)
    ids = list(dict.fromkeys(data.institution_ids))
    if data.role == Role.operator and data.institution_id is not None:
        ids.append(data.institution_id)
    user_checks.check_scope(
        session, data.role, ids, data.territory_id, data.institution_id, errors, data.sector
    )
    if data.password and (why := passwords.problem(data.password, login)):
        errors["password"] = why
    if errors:
        raise FormInvalid(errors)
    credential = Credential()
    password = data.password
    if not password and not invite:
        password = auth_service.generate_password()
        credential = Credential(password=password)
    user = auth_service.create_user(
        session,
        data.model_copy(
            update={
                "login": login,
                "name": name,
                "email": email,
                "password": password,
                "institution_ids": ids if data.role == Role.operator else [],
                "institution_id": data.institution_id if data.role != Role.operator else None,
            }
        ),
    )
    if invite:
        credential = Credential(invitation=invitations.new_invitation(session, user, now))
    audit.record(
        session,
        actor=by,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=state(session, user),
        address=address,
        summary=f"Создан пользователь «{user.login}»"
        + (" (приглашение по ссылке)" if invite else ""),
        at=now,
    )
    return user, credential


def update(
    session: Session,
    user: User,
    changes: UserUpdate,
    *,
    by: User,
    now: datetime,
    address: str | None = None,
) -> User:
    """Change name, e-mail, role, scope or activity (the fields set in `changes`).

    A role change keeps only the scope that role has. Deactivation goes through
    `deactivate` (sessions and tokens end). Raises FormInvalid."""
    assert user.id is not None
    given = changes.model_fields_set
    before = state(session, user)
    role = changes.role if "role" in given and changes.role is not None else user.role
    name = (changes.name if "name" in given and changes.name is not None else user.name).strip()
    email = (changes.email or "").strip() or None if "email" in given else user.email
    if "institution_ids" in given and changes.institution_ids is not None:
        ids = list(dict.fromkeys(changes.institution_ids))
    elif role == Role.operator and user.role == Role.operator:
        ids = before["institution_ids"]
    else:
        ids = []
    territory_id = changes.territory_id if "territory_id" in given else user.territory_id
    institution_id = changes.institution_id if "institution_id" in given else user.institution_id
    if role == Role.supervisor and "territory_id" in given and "institution_id" not in given:
        institution_id = None
    if role == Role.supervisor and "institution_id" in given and "territory_id" not in given:
        territory_id = None
    sector = changes.sector if "sector" in given else user.sector
    errors: dict[str, str] = {}
    if user.id == by.id and role != Role.admin:
        errors["role"] = (
            "Нельзя снять с себя роль администратора — попросите другого администратора"
        )
    elif (
        user.role == Role.admin
        and role != Role.admin
        and user_checks.other_active_admins(session, user) == 0
    ):
        errors["role"] = "Это последний администратор — сначала назначьте другого"
    if not name:
        errors["name"] = "Введите имя: его видят коллеги в очереди и на вопросах"
    user_checks.check_contact(name, email, errors)
    user_checks.check_scope(session, role, ids, territory_id, institution_id, errors, sector)
    if errors:
        raise FormInvalid(errors)
    user.name = name
    user.email = email
    user.role = role
    user.territory_id = territory_id if role == Role.supervisor else None
    user.institution_id = institution_id if role == Role.supervisor else None
    user.sector = sector if role == Role.supervisor else None
    session.add(user)
    session.execute(sa.delete(UserInstitution).where(col(UserInstitution.user_id) == user.id))
    if role == Role.operator:
        for institution_id_ in ids:
            session.add(UserInstitution(user_id=user.id, institution_id=institution_id_))
    session.flush()
    if "active" in given and changes.active is not None and changes.active != user.is_active:
        if changes.active:
            activate(session, user, by=by, now=now, address=address)
        else:
            deactivate(session, user, by=by, now=now, address=address)
    after = state(session, user)
    # Activity has its own entry (above); this one records the rest.
    before.pop("is_active")
    after.pop("is_active")
    if before != after:
        audit.record(
            session,
            actor=by,
            action="user.update",
            object_type="user",
            object_id=user.id,
            before=before,
            after=after,
            address=address,
            summary=f"Изменён пользователь «{user.login}»",
            at=now,
        )
    return user


def deactivate(
    session: Session, user: User, *, by: User, now: datetime, address: str | None = None
) -> User:
    """Switch a user off: their web sessions end and their API tokens are revoked at
    once; history stays. Raises FormInvalid for oneself or the last administrator."""
    if user.id == by.id:
        raise FormInvalid({"active": "Нельзя отключить свою учётную запись"})
    if user.role == Role.admin and user_checks.other_active_admins(session, user) == 0:
        raise FormInvalid({"active": "Это последний администратор — его нельзя отключить"})
    if not user.is_active:
        return user
    user.is_active = False
    session.add(user)
    login_sessions.end_sessions(session, user)
    result = session.execute(
        sa.update(ApiToken)
        .where(col(ApiToken.user_id) == user.id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    revoked = int(getattr(result, "rowcount", 0) or 0)
    session.execute(
        sa.delete(UserInvitation).where(
            col(UserInvitation.user_id) == user.id, col(UserInvitation.used_at).is_(None)
        )
    )
    session.flush()
    audit.record(
        session,
        actor=by,
        action="user.deactivate",
        object_type="user",
        object_id=user.id,
        before={"is_active": True},
        after={"is_active": False, "api_access_revoked": revoked},
        address=address,
        summary=f"Отключён пользователь «{user.login}»: входы завершены, токены отозваны",
        at=now,
    )
    return user


def activate(
    session: Session, user: User, *, by: User, now: datetime, address: str | None = None
) -> User:
    """Switch a user back on (their old tokens stay revoked)."""
    if user.is_active:
        return user
    user.is_active = True
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="user.activate",
        object_type="user",
        object_id=user.id,
        before={"is_active": False},
        after={"is_active": True},
        address=address,
        summary=f"Снова включён пользователь «{user.login}»",
        at=now,
    )
    return user


def reset_password(
    session: Session,
    user: User,
    *,
    by: User,
    now: datetime,
    address: str | None = None,
    invite: bool = False,
) -> Credential:
    """Replace a user's password with a generated one (or, with `invite`, clear it and
    make an invitation link); every sign-in of theirs ends."""
    if invite:
        user.password_hash = None
        session.add(user)
        credential = Credential(invitation=invitations.new_invitation(session, user, now))
    else:
        password = auth_service.generate_password()
        auth_service.set_password(session, user, password)
        credential = Credential(password=password)
    login_sessions.end_sessions(session, user)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="user.password_reset",
        object_type="user",
        object_id=user.id,
        after={"password": "новый", "by_link": invite},
        address=address,
        summary=f"Сброшен пароль пользователя «{user.login}»"
        + (": выдана ссылка" if invite else ": выдан одноразовый пароль"),
        at=now,
    )
    return credential
