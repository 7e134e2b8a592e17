"""The checks an administrator's changes to a user must pass, shared by creating and
changing one (`app.auth.users`): the scope each role needs, a name and e-mail that fit,
and how many other active administrators remain (the last one stays). Each check adds
to `errors` (field -> how to fix it, in Russian), so a form names every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col, func

from app.auth.models import Role, User
from app.directory.models import Institution, Sector, Territory

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def check_scope(
    session: Session,
    role: Role,
    institution_ids: Iterable[int],
    territory_id: int | None,
    institution_id: int | None,
    errors: dict[str, str],
    sector: str | None = None,
) -> None:
    ids = list(institution_ids)
    if role == Role.operator:
        if not ids:
            errors["institution_ids"] = (
                "Выберите хотя бы одно учреждение, вопросы которого оператор будет видеть"
            )
        elif session.scalar(sa.select(func.count()).where(col(Institution.id).in_(ids))) != len(
            set(ids)
        ):
            errors["institution_ids"] = "Такого учреждения нет — выберите учреждение из списка"
    elif role == Role.supervisor:
        if territory_id is None and institution_id is None:
            errors["scope"] = (
                "Выберите территорию или учреждение, за которыми куратор будет следить"
            )
        if territory_id is not None and session.get(Territory, territory_id) is None:
            errors["scope"] = "Такой территории нет — выберите территорию из списка"
        if institution_id is not None and session.get(Institution, institution_id) is None:
            errors["scope"] = "Такого учреждения нет — выберите учреждение из списка"
        if sector is not None and sector not in Sector.__members__:
            errors["sector"] = "Такой отрасли нет — выберите отрасль из списка"
        elif sector is not None and territory_id is None:
            # A sector department sees that sector's institutions of a territory
            # subtree; under an institution the sector would mean the whole directory.
            errors["sector"] = (
                "Отрасль задаётся вместе с территорией: выберите в поле «Что видит куратор» "
                "территорию или оставьте «Все отрасли»"
            )


def check_contact(name: str, email: str | None, errors: dict[str, str]) -> None:
    if len(name) > 255:
        errors["name"] = "Имя длиннее 255 знаков — сократите его"
    if email and (len(email) > 255 or not _EMAIL.match(email)):
        errors["email"] = "Введите адрес почты в виде name@example.ru"


def other_active_admins(session: Session, user: User) -> int:
    return (
        session.scalar(
            sa.select(func.count()).where(
                col(User.role) == Role.admin, col(User.is_active), col(User.id) != user.id
            )
        )
        or 0
    )
