"""Applying a registry spreadsheet to the directory: territories, institutions, pages.

Missing territory levels are created (region, then municipality, then settlement
unless `territory_kind` names the last level). Institutions are keyed by
(territory, name), pages by (platform, external_id): importing the same file again
changes nothing, a changed row updates in place. The whole file is checked before
anything is written, and written in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, select

from app.core.errors import Invalid
from app.directory.models import Institution, Page, Sector, Territory, TerritoryKind
from app.directory.service import PATH_SEPARATOR, new_page_key
from app.directory.spreadsheet import BadRow, ImportError_, Row, check_rows, parse_rows

_DEPTH_KINDS = [TerritoryKind.region, TerritoryKind.municipality, TerritoryKind.settlement]


@dataclass
class ImportResult:
    rows: int = 0
    created: dict[str, int] = field(
        default_factory=lambda: {"territory": 0, "institution": 0, "page": 0}
    )
    updated: dict[str, int] = field(
        default_factory=lambda: {"territory": 0, "institution": 0, "page": 0}
    )

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())


@dataclass(frozen=True)
class Change:
    """What one row does to one object: adds it, or changes fields (old -> new)."""

    row: int
    kind: str  # "add" | "change"
    object_type: str  # "territory" | "institution" | "page"
    name: str
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)


OnChange = Callable[[Change], object]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def import_rows(
    session: Session,
    raw: list[dict[str, str]],
    progress: Callable[[int], object] | None = None,
    *,
    start: int = 2,
    on_change: OnChange | None = None,
    errors: list[BadRow] | None = None,
) -> ImportResult:
    """Apply a registry to the directory; raises ImportError_ naming the first bad row.

    Nothing is committed here: the caller commits once, so a failure leaves no trace.
    `start` is the file row number of `raw[0]`; `on_change` hears of every object a
    row adds or changes. With an `errors` list, bad rows are recorded there and
    skipped instead of raising (the preview reports them all at once).
    """
    if errors is None:
        rows = list(parse_rows(raw, start))
        _check_consistency(rows)
    else:
        rows, bad = check_rows(raw, start)
        errors.extend(bad)
        rows = _consistent(rows, errors)
    return _apply(session, rows, progress, on_change, errors)


def _apply(
    session: Session,
    rows: list[Row],
    progress: Callable[[int], object] | None,
    on_change: OnChange | None,
    errors: list[BadRow] | None,
) -> ImportResult:
    def note(change: Change) -> None:
        if on_change is not None:
            on_change(change)

    result = ImportResult(rows=len(rows))

    territories = {t.full_name: t for t in session.exec(select(Territory)).all()}
    territory_by_id = {t.id: t for t in territories.values()}
    institutions = {(i.territory_id, i.name): i for i in session.exec(select(Institution)).all()}
    pages = {(p.platform, p.external_id): p for p in session.exec(select(Page)).all()}

    def territory_for(row: Row) -> Territory:
        parent: Territory | None = None
        for depth, name in enumerate(row.territory):
            full = PATH_SEPARATOR.join(row.territory[: depth + 1])
            territory = territories.get(full)
            last = depth == len(row.territory) - 1
            kind = (
                row.territory_kind
                if last and row.territory_kind
                else _DEPTH_KINDS[min(depth, len(_DEPTH_KINDS) - 1)]
            )
            if territory is None:
                tz = (
                    row.timezone
                    if last and row.timezone
                    else parent.timezone
                    if parent
                    else row.timezone or "Europe/Moscow"
                )
                territory = Territory(
                    name=name,
                    kind=kind,
                    parent_id=parent.id if parent else None,
                    timezone=tz,
                    full_name=full,
                )
                session.add(territory)
                session.flush()
                territory.path = (parent.path if parent else "/") + f"{territory.id}/"
                territories[full] = territory
                territory_by_id[territory.id] = territory
                result.created["territory"] += 1
                note(Change(row.number, "add", "territory", full))
            elif last:
                fields: dict[str, tuple[str, str]] = {}
                if row.timezone and territory.timezone != row.timezone:
                    fields["timezone"] = (territory.timezone, row.timezone)
                    territory.timezone = row.timezone
                if row.territory_kind and territory.kind != row.territory_kind:
                    fields["territory_kind"] = (_text(territory.kind), _text(row.territory_kind))
                    territory.kind = row.territory_kind
                if fields:
                    session.add(territory)
                    result.updated["territory"] += 1
                    note(Change(row.number, "change", "territory", full, fields))
            parent = territory
        assert parent is not None
        return parent

    # Pass 1: territories and institutions (parents may appear after children).
    new_institutions: list[Institution] = []
    row_institution: dict[int, Institution] = {}
    for done, row in enumerate(rows, start=1):
        territory = territory_for(row)
        if row.institution:
            assert territory.id is not None
            key = (territory.id, row.institution)
            institution = institutions.get(key)
            if institution is None:
                institution = Institution(
                    name=row.institution,
                    territory_id=territory.id,
                    sector=row.sector or Sector.other,
                )
                session.add(institution)
                institutions[key] = institution
                new_institutions.append(institution)
                result.created["institution"] += 1
                note(Change(row.number, "add", "institution", row.institution))
            elif row.sector and institution.sector != row.sector:
                note(
                    Change(
                        row.number,
                        "change",
                        "institution",
                        row.institution,
                        {"sector": (_text(institution.sector), _text(row.sector))},
                    )
                )
                institution.sector = row.sector
                session.add(institution)
                result.updated["institution"] += 1
            row_institution[row.number] = institution
        if progress and done % 200 == 0:
            progress(200)
    session.flush()

    # Pass 2: institution parents (by name, in the same territory or any ancestor).
    by_name: dict[str, list[Institution]] = {}
    for institution in institutions.values():
        by_name.setdefault(institution.name, []).append(institution)
    touched_paths = False
    inst_by_id = {i.id: i for i in institutions.values()}
    skipped: set[int] = set()
    for row in rows:
        institution = row_institution.get(row.number)
        if institution is None or not row.parent_institution:
            continue
        territory = territory_by_id[institution.territory_id]
        candidates = by_name.get(row.parent_institution, [])
        ancestors = [int(p) for p in territory.path.strip("/").split("/")]
        parent = next(
            (c for tid in reversed(ancestors) for c in candidates if c.territory_id == tid), None
        )
        problem = (
            f"вышестоящее учреждение «{row.parent_institution}» не найдено"
            if parent is None
            else "учреждение не может подчиняться само себе"
            if parent is institution
            else None
        )
        if problem is not None or parent is None:
            if errors is None:
                raise ImportError_(row.number, problem or "")
            errors.append(BadRow(row.number, problem or ""))
            skipped.add(row.number)
            continue
        if institution.parent_id != parent.id:
            old = inst_by_id.get(institution.parent_id) if institution.parent_id else None
            institution.parent_id = parent.id
            session.add(institution)
            touched_paths = True
            if institution not in new_institutions:
                result.updated["institution"] += 1
                note(
                    Change(
                        row.number,
                        "change",
                        "institution",
                        institution.name,
                        {"parent_institution": (old.name if old else "", parent.name)},
                    )
                )
    if new_institutions or touched_paths:
        _rebuild_institution_paths(session, list(institutions.values()))

    # Pass 3: pages.
    for row in rows:
        if row.platform is None or row.number in skipped:
            continue
        institution = row_institution[row.number]
        assert institution.id is not None
        page = pages.get((row.platform, row.external_id))
        name = row.page_name or institution.name
        if page is None:
            page = Page(
                institution_id=institution.id,
                platform=row.platform,
                name=name,
                url=row.url,
                external_id=row.external_id,
                key=new_page_key(),
            )
            session.add(page)
            pages[(row.platform, row.external_id)] = page
            result.created["page"] += 1
            note(Change(row.number, "add", "page", f"{name} ({row.platform} {row.external_id})"))
        elif (page.institution_id, page.name, page.url) != (institution.id, name, row.url):
            fields = {}
            if page.institution_id != institution.id:
                old_inst = inst_by_id.get(page.institution_id)
                fields["institution"] = (old_inst.name if old_inst else "", institution.name)
            if page.name != name:
                fields["page_name"] = (page.name, name)
            if page.url != row.url:
                fields["url"] = (page.url, row.url)
            note(
                Change(
                    row.number,
                    "change",
                    "page",
                    f"{name} ({row.platform} {row.external_id})",
                    fields,
                )
            )
            page.institution_id, page.name, page.url = institution.id, name, row.url
            session.add(page)
            result.updated["page"] += 1
    session.flush()
    if progress:
        progress(len(rows) % 200)
    return result


def _consistent(rows: list[Row], errors: list[BadRow]) -> list[Row]:
    """The rows without those that repeat a page of an earlier row (recorded as bad)."""
    seen: dict[tuple[str, str], int] = {}
    kept = []
    for row in rows:
        if row.platform is not None:
            key = (row.platform, row.external_id)
            if key in seen:
                errors.append(
                    BadRow(
                        row.number,
                        f"страница {row.platform} {row.external_id} уже была в строке {seen[key]}",
                    )
                )
                continue
            seen[key] = row.number
        kept.append(row)
    return kept


def _check_consistency(rows: list[Row]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.platform is None:
            continue
        key = (row.platform, row.external_id)
        if key in seen:
            raise ImportError_(
                row.number,
                f"страница {row.platform} {row.external_id} уже была в строке {seen[key]}",
            )
        seen[key] = row.number


def _rebuild_institution_paths(session: Session, institutions: list[Institution]) -> None:
    by_id = {i.id: i for i in institutions}
    cache: dict[int, str] = {}

    def path_of(institution: Institution, depth: int = 0) -> str:
        assert institution.id is not None
        if institution.id in cache:
            return cache[institution.id]
        if depth > 50:
            raise Invalid("Цикл в подчинённости учреждений", code="cycle")
        parent = by_id.get(institution.parent_id) if institution.parent_id else None
        path = (path_of(parent, depth + 1) if parent else "/") + f"{institution.id}/"
        cache[institution.id] = path
        return path

    for institution in institutions:
        path = path_of(institution)
        if institution.path != path:
            institution.path = path
            session.add(institution)
    session.flush()
