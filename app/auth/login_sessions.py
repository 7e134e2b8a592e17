"""Web sign-in sessions: signing in (throttled, audited) opens one behind a cookie,
the cookie's user on each page, signing out, and ending a user's sessions when their
password changes or they are switched off. The plain cookie value is never stored."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import audit, throttle
from app.auth import service as auth_service
from app.auth.models import LoginSession, User
from app.core.crypto import hash_token


def login(
    session: Session,
    login_name: str,
    password: str,
    now: datetime,
    hours: int,
    *,
    address: str | None = None,
) -> tuple[User, str] | None:
    """Check credentials; on success open a session and return (user, cookie value).

    With the client's `address`, attempts are throttled (`app.auth.throttle`): over
    the cap it raises TooManyAttempts before any password is hashed, and a failure
    is recorded (the caller commits it with the refusal)."""
    if address is not None:
        throttle.check(session, login_name, address, now)
    user = auth_service.get_user_by_login(session, login_name.strip())
    ok = auth_service.verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        if address is not None:
            throttle.record_failure(session, login_name, address, now)
        audit.record(
            session,
            actor=None,
            action="sign_in.failed",
            object_type="user",
            object_id=user.id if user is not None else None,
            after={"login": login_name.strip()[:150]},
            address=address,
            summary=f"Неудачный вход под логином «{login_name.strip()[:150]}»",
            at=now,
        )
        return None
    if address is not None:
        throttle.forget_login(session, login_name)
    plain = secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(
        LoginSession(
            token_hash=hash_token(plain),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            last_seen_at=now,
        )
    )
    user.last_login_at = now
    session.add(user)
    audit.record(
        session,
        actor=user,
        action="sign_in.success",
        object_type="user",
        object_id=user.id,
        address=address,
        summary="Вход в систему",
        at=now,
    )
    return user, plain


# The last-use stamp of a session is written at most this often.
_TOUCH_EVERY = timedelta(minutes=1)


def session_user(
    session: Session, plain: str, now: datetime, idle: timedelta | None = None
) -> tuple[User, LoginSession] | None:
    """The signed-in user of a session cookie, or None when the session is unknown,
    past its absolute lifetime (`expires_at`), unused for longer than `idle`, or its
    user is deactivated. A live session's last use is stamped (at most once a minute;
    the caller commits)."""
    row = session.exec(
        select(LoginSession, User)
        .join(User, col(User.id) == LoginSession.user_id)
        .where(LoginSession.token_hash == hash_token(plain))
    ).first()
    if row is None:
        return None
    login_session, user = row
    if login_session.expires_at <= now or not user.is_active:
        return None
    last_seen = login_session.last_seen_at or login_session.created_at
    if idle is not None and last_seen + idle <= now:
        return None
    if login_session.last_seen_at is None or now - login_session.last_seen_at >= _TOUCH_EVERY:
        login_session.last_seen_at = now
        session.add(login_session)
    return user, login_session


def logout(session: Session, plain: str) -> None:
    session.execute(
        sa.delete(LoginSession).where(col(LoginSession.token_hash) == hash_token(plain))
    )


def end_sessions(session: Session, user: User, *, keep: str | None = None) -> None:
    """End every web sign-in of `user`, except the one whose cookie is `keep`."""
    ending = sa.delete(LoginSession).where(col(LoginSession.user_id) == user.id)
    if keep:
        ending = ending.where(col(LoginSession.token_hash) != hash_token(keep))
    session.execute(ending)
