"""The password policy: long enough, not the login, not a well-known password.

Applied wherever a password is chosen (user creation, the profile, a reset, an
invitation link); each problem is a Russian sentence that says how to fix it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 256
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line and not line.startswith("#"))


def problem(password: str, login: str = "") -> str | None:
    """Why `password` may not be used (a Russian sentence), or None if it may."""
    if len(password) < MIN_LENGTH:
        return f"Пароль должен быть не короче {MIN_LENGTH} знаков"
    if len(password) > MAX_LENGTH:
        return f"Пароль длиннее {MAX_LENGTH} знаков — сократите его"
    folded = password.strip().casefold()
    if login and login.strip().casefold() in {folded, folded[::-1]}:
        return "Пароль не должен совпадать с логином — придумайте другой"
    if folded in common_passwords() or len(set(folded)) < 3:
        return "Этот пароль слишком распространён, его легко подобрать — придумайте другой"
    return None
