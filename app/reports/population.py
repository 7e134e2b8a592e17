"""What a report covers and how it groups: the filter, the caller's scope, group keys and names.

Shared by every figure family (:mod:`app.reports.figures`, :mod:`app.reports.backlog`,
:mod:`app.reports.dashboard`). Territory groups are the children of the scope's root:
the `territory_id` filter, else the caller's own territory (a municipal supervisor
gets their settlements, the ЦУР its municipalities), else the one top-level territory.
Days and weeks are local dates in the root territory's zone (else Moscow time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.models import Role, User
from app.core.errors import Invalid, NotFound
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory
from app.reports import sql

GROUPS = (
    "institution",
    "page",
    "sector",
    "territory",
    "classification",
    "day",
    "week",
    "total",
)
DEFAULT_TIMEZONE = "Europe/Moscow"
CLASSIFICATION_NAMES_RU = {
    "question": "Вопросы",
    "complaint": "Жалобы",
    "gratitude": "Благодарности",
    "spam": "Спам",
    "other": "Не вопросы",
}


@dataclass
class ReportFilter:
    start: datetime
    end: datetime
    territory_id: int | None = None
    institution_id: int | None = None
    group_by: str = "institution"
    # Every institution of a sector within the territory subtree (a sector department).
    sector: str | None = None

    def previous(self) -> ReportFilter:
        """The period of the same length just before this one."""
        length = self.end - self.start
        return ReportFilter(
            self.start - length,
            self.start,
            self.territory_id,
            self.institution_id,
            self.group_by,
            self.sector,
        )


@dataclass
class Scope:
    timezone: str
    # The territory whose children territory groups are ("/" for none).
    root_path: str = "/"
    root_id: int = 0


def report_scope(session: Session, f: ReportFilter, user: User | None = None) -> Scope:
    """Check the filter; the territory territory groups are children of, and the zone
    of dates.

    Raises Invalid for an unknown grouping, sector or an empty period, NotFound for an
    unknown territory or institution.
    """
    if f.group_by not in GROUPS:
        raise Invalid(f"group_by: одно из {', '.join(GROUPS)}", code="invalid_group_by")
    if f.end <= f.start:
        raise Invalid("Конец периода должен быть позже начала", code="invalid_period")
    if f.sector is not None and f.sector not in Sector.__members__:
        raise Invalid(f"Неизвестная отрасль: {f.sector}", code="invalid_sector")
    if user is not None:
        check_visible(session, user, f)
    root: Territory | None = None
    if f.territory_id is not None:
        root = session.get(Territory, f.territory_id)
        if root is None:
            raise NotFound("Территория не найдена")
    elif f.institution_id is not None:
        institution = session.get(Institution, f.institution_id)
        if institution is None:
            raise NotFound("Учреждение не найдено")
        root = session.get(Territory, institution.territory_id)
    elif user is not None:
        root = scope_root(session, user)
    if root is None:
        return Scope(DEFAULT_TIMEZONE)
    assert root.id is not None
    return Scope(root.timezone, root.path, root.id)


def check_visible(session: Session, user: User, f: ReportFilter) -> None:
    """NotFound (never 403: ids must not leak) for a territory or institution outside
    the caller's scope. A territory supervisor sees their subtree; anyone else a
    territory that holds an institution they may see."""
    ids = auth_service.visible_institution_ids(user)
    if ids is None:
        return
    if f.institution_id is not None and not auth_service.can_see_institution(
        session, user, f.institution_id
    ):
        raise NotFound("Учреждение не найдено")
    if f.territory_id is None:
        return
    target = session.get(Territory, f.territory_id)
    if target is None:
        raise NotFound("Территория не найдена")
    if user.role == Role.supervisor and user.territory_id is not None:
        own = session.get(Territory, user.territory_id)
        if own is not None and target.path.startswith(own.path):
            return
    inside = (
        sa.select(sa.literal(1))
        .select_from(Institution)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(col(Territory.path).startswith(target.path), col(Institution.id).in_(ids))
        .limit(1)
    )
    if user.role == Role.supervisor and user.territory_id is not None and not user.institution_id:
        raise NotFound("Территория не найдена")
    if session.execute(inside).first() is None:
        raise NotFound("Территория не найдена")


def scope_root(session: Session, user: User) -> Territory | None:
    """The territory a user's view starts from: a supervisor's territory (or their
    institution's), an operator's institutions' common territory, or for everyone
    else the single top-level territory when there is just one."""
    if user.role == Role.supervisor and user.territory_id is not None:
        return session.get(Territory, user.territory_id)
    if user.role == Role.supervisor and user.institution_id is not None:
        institution = session.get(Institution, user.institution_id)
        return session.get(Territory, institution.territory_id) if institution else None
    if user.role == Role.operator and user.id is not None:
        ids = auth_service.institution_ids_of(session, user.id)
        territories = set(
            session.exec(select(Institution.territory_id).where(col(Institution.id).in_(ids)))
        )
        if len(territories) == 1:
            return session.get(Territory, territories.pop())
        return None
    tops = session.exec(select(Territory).where(col(Territory.parent_id).is_(None)).limit(2)).all()
    return tops[0] if len(tops) == 1 else None


def timezone_of(
    session: Session, user: User, territory_id: int | None, institution_id: int | None
) -> str:
    """The zone a report's dates are read in: the territory's, the institution's, else
    the caller's own root territory's (Moscow time without one)."""
    territory: Territory | None = None
    if territory_id is not None:
        territory = session.get(Territory, territory_id)
    elif institution_id is not None:
        institution = session.get(Institution, institution_id)
        territory = session.get(Territory, institution.territory_id) if institution else None
    else:
        territory = scope_root(session, user)
    return territory.timezone if territory else DEFAULT_TIMEZONE


def visible_conditions(
    session: Session, user: User, f: ReportFilter, institution: Any
) -> list[Any]:
    """Conditions on an institution column: the caller's scope and the filters (subtrees,
    sector)."""
    ids = auth_service.visible_institution_ids(user)
    conditions: list[Any] = [] if ids is None else [institution.in_(ids)]
    inst = sa.orm.aliased(Institution)
    terr = sa.orm.aliased(Territory)
    if f.territory_id is not None:
        path = session.get(Territory, f.territory_id)
        assert path is not None
        conditions.append(
            institution.in_(
                sa.select(col(inst.id))
                .join(terr, col(terr.id) == col(inst.territory_id))
                .where(col(terr.path).startswith(path.path))
            )
        )
    if f.institution_id is not None:
        root = session.get(Institution, f.institution_id)
        assert root is not None
        conditions.append(
            institution.in_(sa.select(col(inst.id)).where(col(inst.path).startswith(root.path)))
        )
    if f.sector is not None:
        conditions.append(
            institution.in_(sa.select(col(inst.id)).where(col(inst.sector) == f.sector))
        )
    return conditions


def group_key(
    session: Session,
    f: ReportFilter,
    scope: Scope,
    *,
    institution: Any,
    territory: Any,
    page_id: Any,
    created_at: Any,
    classification: Any,
) -> Any:
    """The SQL expression of a row's group under `f.group_by`, from the columns of its
    question (page, creation time, classification), institution and territory."""
    if f.group_by == "total":
        return sa.literal("total")
    if f.group_by == "institution":
        return institution.id
    if f.group_by == "page":
        return page_id
    if f.group_by == "sector":
        return institution.sector
    if f.group_by == "classification":
        return classification
    if f.group_by == "territory":
        if scope.root_path == "/":
            # No root: the top-level territory each institution lies in.
            return sql.child_of(session, territory.path, "/", 0)
        return sql.child_of(session, territory.path, scope.root_path, scope.root_id)
    if f.group_by == "day":
        return sql.local_day(session, created_at, scope.timezone, f.start)
    return sql.local_week(session, created_at, scope.timezone, f.start)


def row_key(group_by: str, value: Any) -> str:
    """A group's key as the API shows it (weeks as ISO weeks, «2026-W11»)."""
    text = str(value)
    if group_by == "week":
        year, week, _ = date.fromisoformat(text).isocalendar()
        return f"{year}-W{week:02d}"
    if group_by in GROUPS and hasattr(value, "value"):
        return str(value.value)
    return text


def group_names(session: Session, group_by: str, keys: set[str]) -> dict[str, str]:
    """Russian display names of group keys (names, sectors, dd.mm.yyyy dates, week spans)."""
    numeric = [int(k) for k in keys if k.isdigit()]
    if group_by == "institution":
        rows = session.exec(select(Institution).where(col(Institution.id).in_(numeric)))
        return {str(i.id): i.name for i in rows}
    if group_by == "page":
        return {
            str(p.id): p.name for p in session.exec(select(Page).where(col(Page.id).in_(numeric)))
        }
    if group_by == "territory":
        rows_t = session.exec(select(Territory).where(col(Territory.id).in_(numeric)))
        return {str(t.id): t.name for t in rows_t}
    if group_by == "sector":
        return {
            k: SECTOR_NAMES_RU.get(Sector(k), k) if k in Sector.__members__ else k for k in keys
        }
    if group_by == "total":
        return dict.fromkeys(keys, "Всего")
    if group_by == "classification":
        return {k: CLASSIFICATION_NAMES_RU.get(k, "Другое") for k in keys}
    if group_by == "day":
        return {k: datetime.fromisoformat(k).strftime("%d.%m.%Y") for k in keys}
    out = {}
    for k in keys:
        monday = datetime.strptime(k + "-1", "%G-W%V-%u")
        sunday = monday + timedelta(days=6)
        out[k] = f"{monday:%d.%m} – {sunday:%d.%m.%Y}"
    return out
