"""API tokens: made with the plain value returned once and only its hash stored, checked
on every API call (`app.auth.deps`), revoked. And as administrators manage them: issue,
list with last use, revoke, both changes audited; the admin pages and `/api/v1/tokens`
call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.models import ApiToken, User
from app.core.crypto import hash_token, new_token
from app.core.errors import Invalid, NotFound


def create_token(session: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new bearer token; the plain value is returned once and stored only hashed."""
    assert user.id is not None
    plain = new_token("otk")
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(plain), prefix=plain[:10])
    session.add(token)
    session.flush()
    return token, plain


def authenticate_token(session: Session, plain: str, now: datetime) -> User | None:
    row = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(plain))
    ).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or not user.is_active:
        return None
    # Touch at most once a minute: a busy integration should not write on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        session.add(token)
    return user


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("Токен не найден")
    token.revoked_at = token.revoked_at or now
    session.add(token)
    session.flush()
    return token


def tokens_of(session: Session, user_id: int) -> Sequence[ApiToken]:
    return session.exec(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id).desc())
    ).all()


# --- as administrators manage them -----------------------------------------


def issue(
    session: Session,
    owner_id: int,
    name: str,
    *,
    by: User,
    now: datetime,
    address: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token for an active user; returns it and its plain value (shown once).
    Raises Invalid for an unknown or deactivated owner or an over-long name."""
    owner = session.get(User, owner_id)
    if owner is None:
        raise Invalid("Пользователь не найден — выберите его из списка", code="invalid_user")
    if not owner.is_active:
        raise Invalid(
            f"Пользователь «{owner.login}» отключён — токен ему не выдать", code="invalid_user"
        )
    name = name.strip()
    if len(name) > 255:
        raise Invalid("Название длиннее 255 знаков — сократите его", code="invalid_name")
    token, plain = create_token(session, owner, name)
    audit.record(
        session,
        actor=by,
        action="token.create",
        object_type="token",
        object_id=token.id,
        after={"user_id": owner.id, "login": owner.login, "name": name, "prefix": token.prefix},
        address=address,
        summary=f"Выпущен токен {token.prefix}… для «{owner.login}»",
        at=now,
    )
    return token, plain


def revoke(
    session: Session, token_id: int, *, by: User, now: datetime, address: str | None = None
) -> ApiToken:
    """The token stops working at once (revoking twice changes nothing). Raises NotFound."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("Токен не найден")
    if token.revoked_at is None:
        revoke_token(session, token_id, now)
        audit.record(
            session,
            actor=by,
            action="token.revoke",
            object_type="token",
            object_id=token.id,
            before={"revoked_at": None},
            after={"revoked_at": now, "prefix": token.prefix, "user_id": token.user_id},
            address=address,
            summary=f"Отозван токен {token.prefix}…",
            at=now,
        )
    return token


def listing(
    session: Session,
    *,
    user_id: int | None = None,
    active_only: bool = False,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[tuple[ApiToken, User]], bool]:
    """Tokens newest first with their owners; and whether more follow."""
    query = (
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .order_by(col(ApiToken.id).desc())
        .limit(limit + 1)
    )
    if user_id is not None:
        query = query.where(col(ApiToken.user_id) == user_id)
    if active_only:
        query = query.where(col(ApiToken.revoked_at).is_(None))
    if before_id is not None:
        query = query.where(col(ApiToken.id) < before_id)
    rows = [(t, u) for t, u in session.exec(query).all()]
    return rows[:limit], len(rows) > limit
