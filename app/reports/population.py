"""What a report covers and how it groups: the filter, the caller's scope, group keys and names.

Shared by every figure family (:mod:`app.reports.figures`, :mod:`app.reports.backlog`).
Territory groups roll up to the level just below the `territory_id` filter (or to the
top-level territories). Days and weeks are local dates of the filter's territory
(else Moscow time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.models import User
from app.core.errors import Invalid, NotFound
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory

GROUPS = ("institution", "page", "sector", "territory", "day", "week")
DEFAULT_TIMEZONE = "Europe/Moscow"


@dataclass
class ReportFilter:
    start: datetime
    end: datetime
    territory_id: int | None = None
    institution_id: int | None = None
    group_by: str = "institution"


@dataclass
class Scope:
    base_depth: int
    timezone: str


def report_scope(session: Session, f: ReportFilter) -> Scope:
    """Check the filter; the territory depth groups roll up to and the zone of dates.

    Raises Invalid for an unknown grouping or an empty period, NotFound for an
    unknown territory or institution.
    """
    if f.group_by not in GROUPS:
        raise Invalid(f"group_by: одно из {', '.join(GROUPS)}", code="invalid_group_by")
    if f.end <= f.start:
        raise Invalid("Конец периода должен быть позже начала", code="invalid_period")
    timezone, depth = DEFAULT_TIMEZONE, 0
    if f.territory_id is not None:
        territory = session.get(Territory, f.territory_id)
        if territory is None:
            raise NotFound("Территория не найдена")
        timezone, depth = territory.timezone, len(_ids(territory.path))
    elif f.institution_id is not None:
        institution = session.get(Institution, f.institution_id)
        if institution is None:
            raise NotFound("Учреждение не найдено")
        territory = session.get(Territory, institution.territory_id)
        timezone = territory.timezone if territory else DEFAULT_TIMEZONE
    return Scope(depth, timezone)


def _ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


def visible_conditions(
    session: Session, user: User, f: ReportFilter, institution: Any
) -> list[Any]:
    """Conditions on an institution column: the caller's scope and the filters (subtrees)."""
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
    return conditions


def group_keyer(session: Session, f: ReportFilter, scope: Scope) -> Any:
    """A function from a question's institution, page, creation time, sector and
    territory path to the key of its group under `f.group_by`."""
    tz = ZoneInfo(scope.timezone)

    def key(institution_id: int, page_id: int, created_at: datetime, sector: str, path: str) -> str:
        if f.group_by == "institution":
            return str(institution_id)
        if f.group_by == "page":
            return str(page_id)
        if f.group_by == "sector":
            return sector
        if f.group_by == "territory":
            ids = _ids(path)
            return str(ids[scope.base_depth] if len(ids) > scope.base_depth else ids[-1])
        day = created_at.astimezone(tz).date()
        if f.group_by == "day":
            return day.isoformat()
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"

    return key


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
    if group_by == "day":
        return {k: datetime.fromisoformat(k).strftime("%d.%m.%Y") for k in keys}
    out = {}
    for k in keys:
        monday = datetime.strptime(k + "-1", "%G-W%V-%u")
        sunday = monday + timedelta(days=6)
        out[k] = f"{monday:%d.%m} – {sunday:%d.%m.%Y}"
    return out
