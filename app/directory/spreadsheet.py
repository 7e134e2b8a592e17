"""The regional registry of pages as a spreadsheet (CSV or XLSX), both ways.

One row per page (or per institution without pages, or per bare territory):

    territory | territory_kind | timezone | institution | sector | parent_institution |
    platform | page_name | url | external_id

`territory` is a path from the root, "Челябинская область / Чебаркульский
городской округ"; missing levels are created (region, then municipality, then
settlement unless `territory_kind` names the last level). Institutions are
keyed by (territory, name), pages by (platform, external_id): importing the same
file again changes nothing, a changed row updates in place. The whole file is
checked before anything is written, and written in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from app.core.errors import Invalid
from app.directory.models import (
    Institution,
    Page,
    Platform,
    Sector,
    Territory,
    TerritoryKind,
)
from app.directory.service import PATH_SEPARATOR, new_page_key

COLUMNS = [
    "territory",
    "territory_kind",
    "timezone",
    "institution",
    "sector",
    "parent_institution",
    "platform",
    "page_name",
    "url",
    "external_id",
]
_DEPTH_KINDS = [TerritoryKind.region, TerritoryKind.municipality, TerritoryKind.settlement]
# Russian column titles people put in their registries, mapped to ours.
_ALIASES = {
    "территория": "territory",
    "тип территории": "territory_kind",
    "часовой пояс": "timezone",
    "учреждение": "institution",
    "отрасль": "sector",
    "сфера": "sector",
    "вышестоящее учреждение": "parent_institution",
    "платформа": "platform",
    "соцсеть": "platform",
    "название страницы": "page_name",
    "страница": "page_name",
    "ссылка": "url",
    "адрес": "url",
    "id": "external_id",
    "внешний id": "external_id",
}
_PLATFORM_ALIASES = {
    "вк": "vk",
    "вконтакте": "vk",
    "vkontakte": "vk",
    "тг": "telegram",
    "телеграм": "telegram",
    "tg": "telegram",
    "ок": "ok",
    "одноклассники": "ok",
    "макс": "max",
}


class ImportError_(Invalid):
    """A bad row: the whole import is refused, naming the row."""

    code = "bad_row"

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"Строка {row}: {reason}")
        self.row = row
        self.reason = reason


@dataclass
class Row:
    number: int
    territory: list[str]
    territory_kind: TerritoryKind | None
    timezone: str | None
    institution: str
    sector: Sector | None
    parent_institution: str
    platform: Platform | None
    page_name: str
    url: str
    external_id: str


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


def read_rows(path: Path) -> list[dict[str, str]]:
    """Raw rows of a CSV (UTF-8, comma or semicolon) or XLSX file, keyed by our column names."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path.read_bytes())
    raise Invalid("Поддерживаются файлы .csv и .xlsx", code="format")


def _header(cells: Iterable[Any]) -> list[str]:
    names = []
    for cell in cells:
        name = str(cell or "").strip().lower().lstrip("\ufeff")
        names.append(_ALIASES.get(name, name))
    missing = {"territory"} - set(names)
    if missing:
        raise Invalid(
            "В первой строке нет столбца territory; ожидаются: " + ", ".join(COLUMNS),
            code="format",
        )
    return names


def _read_csv(data: bytes) -> list[dict[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows still saves "CSV" in cp1251.
        text = data.decode("cp1251")
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    with contextlib.suppress(csv.Error):
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = _header(next(reader))
    except StopIteration as exc:
        raise Invalid("Файл пуст", code="format") from exc
    return [dict(zip(header, (c.strip() for c in cells), strict=False)) for cells in reader]


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        try:
            header = _header(next(rows))
        except StopIteration as exc:
            raise Invalid("Файл пуст", code="format") from exc
        result = []
        for cells in rows:
            values = ["" if c is None else str(c).strip() for c in cells]
            result.append(dict(zip(header, values, strict=False)))
        return result
    finally:
        workbook.close()


def _parse(raw: list[dict[str, str]]) -> Iterator[Row]:
    for index, cells in enumerate(raw, start=2):  # row 1 is the header
        if not any(cells.values()):
            continue
        territory = [part.strip() for part in cells.get("territory", "").split("/") if part.strip()]
        if not territory:
            raise ImportError_(index, "не указана территория")
        kind_value = cells.get("territory_kind", "").strip().lower()
        try:
            kind = TerritoryKind(kind_value) if kind_value else None
        except ValueError:
            raise ImportError_(
                index,
                f"неизвестный тип территории «{kind_value}» (federal, region, municipality, settlement)",
            ) from None
        timezone = cells.get("timezone", "").strip() or None
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ImportError_(index, f"неизвестный часовой пояс «{timezone}»") from None
        sector_value = cells.get("sector", "").strip().lower()
        try:
            sector = Sector(sector_value) if sector_value else None
        except ValueError:
            raise ImportError_(
                index, f"неизвестная отрасль «{sector_value}» (допустимо: {', '.join(Sector)})"
            ) from None
        platform_value = cells.get("platform", "").strip().lower()
        platform_value = _PLATFORM_ALIASES.get(platform_value, platform_value)
        try:
            platform = Platform(platform_value) if platform_value else None
        except ValueError:
            raise ImportError_(
                index, f"неизвестная платформа «{platform_value}» (vk, telegram, ok, max, generic)"
            ) from None
        institution = cells.get("institution", "").strip()
        external_id = cells.get("external_id", "").strip()
        if external_id.endswith(".0") and external_id[:-2].lstrip("-").isdigit():
            external_id = external_id[:-2]  # a number that went through Excel
        if platform == Platform.vk:
            external_id = external_id.lstrip("-")
        if platform is not None:
            if not institution:
                raise ImportError_(index, "у страницы не указано учреждение")
            if not external_id:
                raise ImportError_(index, "у страницы не указан external_id")
            if (
                platform in (Platform.vk, Platform.telegram)
                and not external_id.lstrip("-").isdigit()
            ):
                raise ImportError_(
                    index, f"external_id для {platform} должен быть числом: «{external_id}»"
                )
        elif external_id:
            raise ImportError_(index, "указан external_id, но не указана платформа")
        yield Row(
            number=index,
            territory=territory,
            territory_kind=kind,
            timezone=timezone,
            institution=institution,
            sector=sector,
            parent_institution=cells.get("parent_institution", "").strip(),
            platform=platform,
            page_name=cells.get("page_name", "").strip(),
            url=cells.get("url", "").strip(),
            external_id=external_id,
        )


def import_rows(
    session: Session,
    raw: list[dict[str, str]],
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Apply a registry to the directory; raises ImportError_ naming the first bad row.

    Nothing is committed here: the caller commits once, so a failure leaves no trace.
    """
    rows = list(_parse(raw))
    _check_consistency(rows)
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
            elif last:
                changed = False
                if row.timezone and territory.timezone != row.timezone:
                    territory.timezone = row.timezone
                    changed = True
                if row.territory_kind and territory.kind != row.territory_kind:
                    territory.kind = row.territory_kind
                    changed = True
                if changed:
                    session.add(territory)
                    result.updated["territory"] += 1
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
            elif row.sector and institution.sector != row.sector:
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
        if parent is None:
            raise ImportError_(
                row.number, f"вышестоящее учреждение «{row.parent_institution}» не найдено"
            )
        if parent is institution:
            raise ImportError_(row.number, "учреждение не может подчиняться само себе")
        if institution.parent_id != parent.id:
            institution.parent_id = parent.id
            session.add(institution)
            touched_paths = True
            if institution not in new_institutions:
                result.updated["institution"] += 1
    if new_institutions or touched_paths:
        _rebuild_institution_paths(session, list(institutions.values()))

    # Pass 3: pages.
    for row in rows:
        if row.platform is None:
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
        elif (page.institution_id, page.name, page.url) != (institution.id, name, row.url):
            page.institution_id, page.name, page.url = institution.id, name, row.url
            session.add(page)
            result.updated["page"] += 1
    session.flush()
    if progress:
        progress(len(rows) % 200)
    return result


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


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return
    if suffix == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("directory")
        sheet.append(COLUMNS)
        for row in rows:
            sheet.append([row.get(c, "") for c in COLUMNS])
        workbook.save(path)
        return
    raise Invalid("Поддерживаются файлы .csv и .xlsx", code="format")
