"""The regional registry of pages as a spreadsheet file (CSV or XLSX): read, check, write.

One row per page (or per institution without pages, or per bare territory):

    territory | territory_kind | timezone | institution | sector | parent_institution |
    platform | page_name | url | external_id

`territory` is a path from the root, "Челябинская область / Чебаркульский
городской округ". Russian column titles and platform names are accepted. Applying
the rows to the directory is :mod:`app.directory.spreadsheet_import`; writing the
directory back in this format is :mod:`app.directory.spreadsheet_export`.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.errors import Invalid
from app.directory.models import SECTOR_NAMES_RU, Platform, Sector, TerritoryKind

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


# Registries name sectors in Russian, as the pages do («Здравоохранение», «ЖКХ»).
_SECTOR_ALIASES = {name.lower(): str(code) for code, name in SECTOR_NAMES_RU.items()} | {
    "соцзащита": "social",
    "социальная сфера": "social",
    "жилищно-коммунальное хозяйство": "housing",
    "физическая культура и спорт": "sport",
}
_SECTORS_HINT = ", ".join(SECTOR_NAMES_RU.values()) + " или коды: " + ", ".join(Sector)


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


@dataclass(frozen=True)
class BadRow:
    number: int
    reason: str


def read_rows(path: Path) -> list[dict[str, str]]:
    """Raw rows of a CSV (UTF-8, comma or semicolon) or XLSX file, keyed by our column names."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path.read_bytes())
    raise Invalid("Поддерживаются файлы .csv и .xlsx", code="format")


def read_upload(filename: str, data: bytes) -> list[dict[str, str]]:
    """Raw rows of an uploaded file, by its name's extension (as `read_rows`)."""
    suffix = Path(filename or "").suffix.lower()
    if not data:
        raise Invalid("Файл пуст", code="format")
    if suffix == ".csv":
        return _read_csv(data)
    if suffix == ".xlsx":
        try:
            return _read_xlsx(io.BytesIO(data))
        except Invalid:
            raise
        except Exception as exc:  # openpyxl raises many kinds on a damaged file
            raise Invalid(
                "Не удалось прочитать файл XLSX: сохраните его в Excel заново или выгрузите в CSV",
                code="format",
            ) from exc
    raise Invalid("Загрузите файл .csv или .xlsx", code="format")


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


def _read_xlsx(path: Path | io.BytesIO) -> list[dict[str, str]]:
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


def parse_rows(raw: list[dict[str, str]], start: int = 2) -> Iterator[Row]:
    """Validated rows of a raw registry; raises ImportError_ naming the first bad row.

    `start` is the file's row number of `raw[0]` (row 1 is the header)."""
    for index, cells in enumerate(raw, start=start):
        row = parse_row(index, cells)
        if row is not None:
            yield row


def check_rows(raw: list[dict[str, str]], start: int = 2) -> tuple[list[Row], list[BadRow]]:
    """Every row checked: the good ones, and each bad one with its number and reason."""
    rows: list[Row] = []
    bad: list[BadRow] = []
    for index, cells in enumerate(raw, start=start):
        try:
            row = parse_row(index, cells)
        except ImportError_ as exc:
            bad.append(BadRow(exc.row, exc.reason))
            continue
        if row is not None:
            rows.append(row)
    return rows, bad


def parse_row(index: int, cells: dict[str, str]) -> Row | None:
    """One row checked (None for an empty one); raises ImportError_ with the reason."""
    if not any(cells.values()):
        return None
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
    sector_value = _SECTOR_ALIASES.get(sector_value, sector_value)
    try:
        sector = Sector(sector_value) if sector_value else None
    except ValueError:
        raise ImportError_(
            index, f"неизвестная отрасль «{sector_value}» (допустимо: {_SECTORS_HINT})"
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
        if platform in (Platform.vk, Platform.telegram) and not external_id.lstrip("-").isdigit():
            raise ImportError_(
                index, f"external_id для {platform} должен быть числом: «{external_id}»"
            )
    elif external_id:
        raise ImportError_(index, "указан external_id, но не указана платформа")
    return Row(
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
