"""The directory written out as registry rows, in the format the import reads back."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.directory.models import Institution, Page, Territory
from app.directory.spreadsheet import COLUMNS


def export_rows(session: Session) -> list[dict[str, str]]:
    """The directory in the import format: one row per page, institution or bare territory."""
    territories = {t.id: t for t in session.exec(select(Territory).order_by(col(Territory.path)))}
    institutions = session.exec(select(Institution).order_by(col(Institution.id))).all()
    inst_by_id = {i.id: i for i in institutions}
    pages_by_inst: dict[int, list[Page]] = {}
    for page in session.exec(select(Page).order_by(col(Page.id))):
        pages_by_inst.setdefault(page.institution_id, []).append(page)
    used_territories: set[int] = set()
    rows: list[dict[str, str]] = []

    def base(territory: Territory) -> dict[str, str]:
        return {
            "territory": territory.full_name,
            "territory_kind": str(territory.kind),
            "timezone": territory.timezone,
        }

    # Bare territories first, parents before children, so re-import keeps kinds and zones.
    for territory in territories.values():
        rows.append({**dict.fromkeys(COLUMNS, ""), **base(territory)})
        used_territories.add(territory.id or 0)
    for institution in institutions:
        territory = territories[institution.territory_id]
        parent = inst_by_id.get(institution.parent_id) if institution.parent_id else None
        common = {
            **dict.fromkeys(COLUMNS, ""),
            **base(territory),
            "institution": institution.name,
            "sector": str(institution.sector),
            "parent_institution": parent.name if parent else "",
        }
        inst_pages = pages_by_inst.get(institution.id or 0, [])
        if not inst_pages:
            rows.append(common)
        for page in inst_pages:
            rows.append(
                {
                    **common,
                    "platform": str(page.platform),
                    "page_name": page.name,
                    "url": page.url,
                    "external_id": page.external_id,
                }
            )
    return rows
