"""Invitation links: a new user's one-time link to choose a password (valid for
`INVITATION_LIFETIME`, one live link per user, stored as a hash), who a link belongs to,
and accepting it. `app.auth.users` makes them; the page is `app.auth.invite_views`.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import audit, login_sessions, passwords
from app.auth import service as auth_service
from app.auth.models import (
    User,
    UserInvitation,
)
from app.core.crypto import hash_token
from app.core.errors import NotFound

INVITATION_LIFETIME = timedelta(days=7)
FormInvalid = auth_service.FormInvalid


def new_invitation(session: Session, user: User, now: datetime) -> str:
    assert user.id is not None
    # One live link per user: a new one replaces any earlier.
    session.execute(
        sa.delete(UserInvitation).where(
            col(UserInvitation.user_id) == user.id, col(UserInvitation.used_at).is_(None)
        )
    )
    plain = secrets.token_urlsafe(32)
    session.add(
        UserInvitation(
            user_id=user.id,
            token_hash=hash_token(plain),
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
    )
    session.flush()
    return plain


def invitation_user(session: Session, plain: str, now: datetime) -> User | None:
    """The user an unused, unexpired invitation token belongs to (None otherwise)."""
    row = session.exec(
        select(UserInvitation, User)
        .join(User, col(User.id) == UserInvitation.user_id)
        .where(UserInvitation.token_hash == hash_token(plain))
    ).first()
    if row is None:
        return None
    invitation, user = row
    if invitation.used_at is not None or invitation.expires_at <= now or not user.is_active:
        return None
    return user


def accept_invitation(
    session: Session,
    plain: str,
    *,
    password: str,
    repeat: str,
    now: datetime,
    address: str | None = None,
) -> User:
    """Set the password chosen through an invitation link; the link is then used up.
    Raises NotFound for an unknown, used or expired link, FormInvalid for the password."""
    user = invitation_user(session, plain, now)
    if user is None:
        raise NotFound("Ссылка недействительна: она уже использована или устарела")
    errors: dict[str, str] = {}
    if why := passwords.problem(password, user.login):
        errors["password"] = why
    elif password != repeat:
        errors["repeat_password"] = "Пароли не совпадают — введите пароль ещё раз"
    if errors:
        raise FormInvalid(errors)
    auth_service.set_password(session, user, password)
    login_sessions.end_sessions(session, user)
    session.execute(
        sa.update(UserInvitation)
        .where(col(UserInvitation.token_hash) == hash_token(plain))
        .values(used_at=now)
    )
    audit.record(
        session,
        actor=user,
        action="user.password_set",
        object_type="user",
        object_id=user.id,
        address=address,
        summary="Пароль задан по ссылке-приглашению",
        at=now,
    )
    return user
