"""The directory as the administrator reads it: the territory tree with counts, one
territory's institutions with their pages, and a search over all three."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.directory.models import Institution, Page, Territory

SEARCH_LIMIT = 50


@dataclass
class TerritoryNode:
    territory: Territory
    depth: int
    institutions: int = 0
    pages: int = 0


@dataclass
class InstitutionEntry:
    institution: Institution
    territory: Territory
    parent: Institution | None
    pages: list[Page] = field(default_factory=list)


def territory_nodes(session: Session) -> list[TerritoryNode]:
    """Every territory, parents before children and siblings by name, with the number of
    institutions and pages directly on it."""
    territories = session.exec(select(Territory)).all()
    inst_counts = dict(
        session.exec(
            select(Institution.territory_id, func.count()).group_by(col(Institution.territory_id))
        ).all()
    )
    page_counts = dict(
        session.exec(
            select(Institution.territory_id, func.count(col(Page.id)))
            .join(Page, col(Page.institution_id) == col(Institution.id))
            .group_by(col(Institution.territory_id))
        ).all()
    )
    children: dict[int | None, list[Territory]] = {}
    for territory in territories:
        children.setdefault(territory.parent_id, []).append(territory)
    for siblings in children.values():
        siblings.sort(key=lambda t: (t.name.casefold(), t.id or 0))
    nodes: list[TerritoryNode] = []
    stack = [(t, 0) for t in reversed(children.get(None, []))]
    while stack:
        territory, depth = stack.pop()
        nodes.append(
            TerritoryNode(
                territory,
                depth,
                inst_counts.get(territory.id or 0, 0),
                page_counts.get(territory.id or 0, 0),
            )
        )
        stack.extend((c, depth + 1) for c in reversed(children.get(territory.id, [])))
    return nodes


def _entries(session: Session, institutions: list[Institution]) -> list[InstitutionEntry]:
    if not institutions:
        return []
    ids = [i.id for i in institutions]
    pages: dict[int, list[Page]] = {}
    for page in session.exec(
        select(Page).where(col(Page.institution_id).in_(ids)).order_by(col(Page.name))
    ):
        pages.setdefault(page.institution_id, []).append(page)
    territory_ids = {i.territory_id for i in institutions}
    territories = {
        t.id: t for t in session.exec(select(Territory).where(col(Territory.id).in_(territory_ids)))
    }
    parent_ids = {i.parent_id for i in institutions if i.parent_id}
    parents = (
        {
            p.id: p
            for p in session.exec(select(Institution).where(col(Institution.id).in_(parent_ids)))
        }
        if parent_ids
        else {}
    )
    return [
        InstitutionEntry(
            institution=i,
            territory=territories[i.territory_id],
            parent=parents.get(i.parent_id) if i.parent_id else None,
            pages=pages.get(i.id or 0, []),
        )
        for i in institutions
    ]


def institutions_on(session: Session, territory_id: int) -> list[InstitutionEntry]:
    """The institutions directly on a territory, by name, with their pages."""
    rows = session.exec(
        select(Institution)
        .where(Institution.territory_id == territory_id)
        .order_by(col(Institution.name))
    ).all()
    return _entries(session, list(rows))


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, q: str, limit: int = SEARCH_LIMIT) -> list[InstitutionEntry]:
    """Institutions whose name, or whose page's name, address or platform id, or whose
    territory's name contains `q` (any case, Cyrillic too)."""
    pattern = _like(q.strip())
    by_page = select(Page.institution_id).where(
        sa.or_(
            col(Page.name).ilike(pattern, escape="\\"),
            col(Page.url).ilike(pattern, escape="\\"),
            col(Page.external_id).ilike(pattern, escape="\\"),
        )
    )
    by_territory = select(Territory.id).where(col(Territory.full_name).ilike(pattern, escape="\\"))
    rows = session.exec(
        select(Institution)
        .where(
            sa.or_(
                col(Institution.name).ilike(pattern, escape="\\"),
                col(Institution.id).in_(by_page),
                col(Institution.territory_id).in_(by_territory),
            )
        )
        .order_by(col(Institution.name), col(Institution.id))
        .limit(limit)
    ).all()
    return _entries(session, list(rows))


def institution_choices(session: Session) -> list[tuple[int, str]]:
    """(id, «name — territory») of every institution, for a parent or a page's owner."""
    rows = session.exec(
        select(Institution.id, Institution.name, Territory.name)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .order_by(col(Institution.name))
    ).all()
    return [(i or 0, f"{name} — {territory}") for i, name, territory in rows]
