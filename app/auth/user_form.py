"""The administrator's form of a user (`/admin/users`): the choices it offers (territories,
institutions), what it holds, and each user's scope in words for the lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.audit_text import sector_name
from app.auth.models import Role, User
from app.directory.models import Institution, Territory


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    label: str
    depth: int = 0
    group: str = ""


def territories(session: Session) -> list[Choice]:
    rows = session.exec(select(Territory).order_by(col(Territory.path))).all()
    return [
        Choice(t.id or 0, t.name, depth=max(0, t.path.count("/") - 2), group=t.full_name)
        for t in rows
    ]


def institutions(session: Session) -> list[Choice]:
    rows = session.execute(
        sa.select(col(Institution.id), col(Institution.name), col(Territory.full_name))
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .order_by(col(Territory.path), col(Institution.path), col(Institution.name))
    ).all()
    return [Choice(i, name, group=territory) for i, name, territory in rows]


def _names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(col(model.id), col(model.name)).where(col(model.id).in_(ids))
    ).all()
    return {int(i): str(n) for i, n in rows}


def scopes(session: Session, people: list[User]) -> dict[int, str]:
    """What each user sees, in words: «Весь регион», institutions, or a subtree."""
    ids = [u.id for u in people if u.id is not None]
    links: dict[int, list[int]] = {}
    if ids:
        for user_id, institution_id in session.execute(
            sa.text(
                "SELECT user_id, institution_id FROM user_institution "
                "WHERE user_id IN :ids ORDER BY institution_id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": ids},
        ).all():
            links.setdefault(user_id, []).append(institution_id)
    institution_names = _names(
        session,
        Institution,
        {i for v in links.values() for i in v}
        | {u.institution_id for u in people if u.institution_id},
    )
    territory_names = _names(session, Territory, {u.territory_id for u in people if u.territory_id})
    scopes: dict[int, str] = {}
    for u in people:
        assert u.id is not None
        if u.role == Role.admin:
            scopes[u.id] = "Все территории и учреждения"
        elif u.role == Role.operator:
            names = [institution_names.get(i, "?") for i in links.get(u.id, [])]
            more = len(names) - 3
            scopes[u.id] = ", ".join(names[:3]) + (f" и ещё {more}" if more > 0 else "")
        else:
            parts = []
            if u.territory_id:
                parts.append(f"территория «{territory_names.get(u.territory_id, '?')}»")
            if u.institution_id:
                parts.append(f"учреждение «{institution_names.get(u.institution_id, '?')}»")
            scopes[u.id] = ", ".join(parts) + " с подчинёнными"
            if u.sector:
                scopes[u.id] = f"отрасль «{sector_name(u.sector)}»: {scopes[u.id]}"
    return scopes


# --- the form of a user -----------------------------------------------------------------


@dataclass
class UserForm:
    login: str = ""
    name: str = ""
    email: str = ""
    role: str = ""
    institution_ids: tuple[int, ...] = ()
    scope: str = ""  # a supervisor's: "t:<territory id>" or "i:<institution id>"
    sector: str = ""  # a supervisor's sector within the territory; "" for every sector
    credential: str = "password"  # password | invite

    @classmethod
    def of(cls, session: Session, user: User) -> UserForm:
        assert user.id is not None
        scope = ""
        if user.territory_id:
            scope = f"t:{user.territory_id}"
        elif user.institution_id:
            scope = f"i:{user.institution_id}"
        return cls(
            login=user.login,
            name=user.name,
            email=user.email or "",
            role=str(user.role),
            institution_ids=tuple(auth_service.institution_ids_of(session, user.id)),
            scope=scope,
            sector=user.sector or "",
        )

    def role_or_none(self) -> Role | None:
        return Role(self.role) if self.role in Role.__members__ else None

    def scope_ids(self) -> tuple[int | None, int | None]:
        kind, _, raw = self.scope.partition(":")
        value = int(raw) if raw.isdigit() and len(raw) < 10 else None
        return (value if kind == "t" else None), (value if kind == "i" else None)


def ids_from(values: list[str]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(int(v) for v in values if v.isdigit() and len(v) < 10))
