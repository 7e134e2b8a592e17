"""Sign-in throttling: a cap on failed attempts per login and per client address.

Every attempt costs the server an argon2 hash, so guessing passwords is also a way
to load it. Failures are rows in `login_failure` (every web process counts the
same ones); a login or an address over its cap within WINDOW is refused before
any hash is computed, until its oldest counted failure leaves the window.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.auth.models import LoginFailure
from app.core.errors import DomainError

WINDOW = timedelta(minutes=15)
# Guesses at one login, whoever makes them.
PER_LOGIN = 10
# One address may be a whole office behind NAT: several people mistyping at once.
PER_ADDRESS = 30


class TooManyAttempts(DomainError):
    """Sign-in is closed for `minutes` more (rounded up, at least 1)."""

    status_code = 429
    code = "too_many_attempts"

    def __init__(self, minutes: int) -> None:
        super().__init__(f"Слишком много попыток входа. Попробуйте через {minutes} мин.")
        self.minutes = minutes

    @property
    def retry_after(self) -> int:
        return self.minutes * 60


def _key(login: str) -> str:
    return login.strip().lower()[:150]


def _wait(session: Session, column: Any, value: str, cap: int, now: datetime) -> timedelta | None:
    # The cap-th newest failure in the window: sign-in reopens when it leaves the window.
    row = session.execute(
        sa.select(col(LoginFailure.at))
        .where(column == value, col(LoginFailure.at) > now - WINDOW)
        .order_by(col(LoginFailure.at).desc())
        .offset(cap - 1)
        .limit(1)
    ).first()
    if row is None:
        return None
    at: datetime = row[0]
    return at + WINDOW - now


def check(session: Session, login: str, address: str, now: datetime) -> None:
    """Raises TooManyAttempts unless this login may be tried from this address now."""
    waits = [
        _wait(session, col(LoginFailure.login), _key(login), PER_LOGIN, now),
        _wait(session, col(LoginFailure.address), address[:64], PER_ADDRESS, now),
    ]
    longest = max((w for w in waits if w is not None), default=None)
    if longest is not None:
        raise TooManyAttempts(max(1, math.ceil(longest.total_seconds() / 60)))


def record_failure(session: Session, login: str, address: str, now: datetime) -> None:
    """Count one failed attempt (the caller commits it even though sign-in failed)."""
    session.execute(sa.delete(LoginFailure).where(col(LoginFailure.at) <= now - WINDOW))
    session.add(LoginFailure(login=_key(login), address=address[:64], at=now))
    session.flush()


def forget_login(session: Session, login: str) -> None:
    """After a successful sign-in the login's own count starts again; the address's
    stays, so one valid account cannot be used to wash an address's guesses away."""
    session.execute(sa.delete(LoginFailure).where(col(LoginFailure.login) == _key(login)))
