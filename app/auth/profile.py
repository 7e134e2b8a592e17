"""The signed-in user's own profile: their name, e-mail and time zone, and changing
their password (which ends their other sign-ins). The page is `app.auth.views`."""

from __future__ import annotations

import re

from sqlmodel import Session

from app.auth import audit, login_sessions, passwords
from app.auth import service as auth_service
from app.auth.models import User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def update_profile(session: Session, user: User, *, name: str, email: str, timezone: str) -> User:
    """Set the user's own name, e-mail (empty: none) and time zone (empty: their
    territory's). Raises FormInvalid naming every field to fix."""
    name, email, timezone = name.strip(), email.strip(), timezone.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Введите имя: его видят коллеги в очереди и на вопросах"
    elif len(name) > 255:
        errors["name"] = "Имя длиннее 255 знаков — сократите его"
    if email and (len(email) > 255 or not _EMAIL.match(email)):
        errors["email"] = "Введите адрес почты в виде name@example.ru"
    if timezone and timezone not in auth_service.TIMEZONES:
        errors["timezone"] = "Выберите часовой пояс из списка"
    if errors:
        raise auth_service.FormInvalid(errors)
    user.name = name
    user.email = email or None
    user.timezone = timezone or None
    session.add(user)
    session.flush()
    return user


def change_password(
    session: Session,
    user: User,
    *,
    current: str,
    new: str,
    repeat: str,
    keep_session: str | None = None,
    address: str | None = None,
) -> None:
    """Check the current password, set the new one (argon2) and end every other
    sign-in of the user except the cookie `keep_session`. Raises FormInvalid."""
    errors: dict[str, str] = {}
    if not auth_service.verify_password(current, user.password_hash):
        errors["current_password"] = "Текущий пароль введён неверно"
    if why := passwords.problem(new, user.login):
        errors["new_password"] = why
    elif new != repeat:
        errors["repeat_password"] = "Пароли не совпадают — введите новый пароль ещё раз"
    if errors:
        raise auth_service.FormInvalid(errors)
    auth_service.set_password(session, user, new)
    login_sessions.end_sessions(session, user, keep=keep_session)
    audit.record(
        session,
        actor=user,
        action="user.password_change",
        object_type="user",
        object_id=user.id,
        address=address,
        summary="Пароль изменён в профиле; другие входы завершены",
    )
