"""Spreadsheets for Russian officials: the SLA report's rows as CSV and XLSX.

Both carry Russian headers and the same figures as the JSON rows (`figures.SlaRow`).
CSV is what Excel in a Russian locale opens by double-click: UTF-8 with a BOM,
semicolons between fields and decimal commas. XLSX keeps numbers as numbers (the
rate as a percentage format) and states its period in the territory's zone.
Text that a spreadsheet would take for a formula is neutralised (`safe_text`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from app.questions.models import DismissReason
from app.reports.figures import SlaRow
from app.routing.service import DISMISS_REASONS_RU

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# (field, Russian header, kind) of the export columns; dismissals by reason follow.
# kind: "int", "rate" (a fraction, shown as a percentage), "minutes", "text".
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("key", "Ключ", "text"),
    ("name", "Группа", "text"),
    ("questions", "Вопросов", "int"),
    ("answered", "С ответом", "int"),
    ("answered_otklik", "Ответ через Отклик", "int"),
    ("answered_native", "Ответ на платформе", "int"),
    ("on_time", "Ответ в срок", "int"),
    ("late", "Ответ с опозданием или нет ответа после срока", "int"),
    ("breached", "С нарушением срока", "int"),
    ("open", "Открыто", "int"),
    ("dismissed", "Без ответа (снято)", "int"),
    ("dismissal_share", "Доля снятых, %", "rate"),
    ("on_time_rate", "Доля в срок, %", "rate"),
    ("median_first_response_working_minutes", "Медиана первого ответа, раб. мин", "minutes"),
    ("p90_first_response_working_minutes", "90-й процентиль, раб. мин", "minutes"),
    ("median_first_response_wall_minutes", "Медиана первого ответа, мин", "minutes"),
    ("p90_first_response_wall_minutes", "90-й процентиль, мин", "minutes"),
    ("transferred_out", "Передано в другие учреждения", "int"),
    ("wrong_queue_wall_minutes", "Время в чужой очереди, мин", "minutes"),
    ("wrong_queue_working_minutes", "Время в чужой очереди, раб. мин", "minutes"),
)


def safe_text(value: str) -> str:
    """A cell that begins like a formula (=, +, -, @) gets a leading apostrophe, so a
    spreadsheet shows the citizen's text instead of running it (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def table(rows: Sequence[SlaRow]) -> tuple[list[str], list[str], list[list[Any]]]:
    """Field names, Russian headers and values (None for no figure) of the rows."""
    reasons = list(DismissReason)
    fields = [f for f, _, _ in COLUMNS] + [f"dismissed_{r}" for r in reasons]
    headers = [h for _, h, _ in COLUMNS] + [
        f"Снято: {DISMISS_REASONS_RU.get(r, r).lower()}" for r in reasons
    ]
    data = [
        [getattr(row, f) for f, _, _ in COLUMNS]
        + [row.dismissed_by_reason.get(r, 0) for r in reasons]
        for row in rows
    ]
    return fields, headers, data


def _kinds() -> list[str]:
    return [k for _, _, k in COLUMNS] + ["int"] * len(DismissReason)


def csv_number(value: Any, kind: str = "minutes") -> str:
    """A number as Excel in a Russian locale reads it: «12,5» (no grouping)."""
    if value is None:
        return ""
    if kind == "rate":
        value = round(float(value) * 100, 2)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def csv_lines(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """CSV text line by line: a BOM, then `;`-separated fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    yield BOM + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        yield buffer.getvalue()


def sla_csv(rows: Sequence[SlaRow]) -> str:
    _, headers, data = table(rows)
    kinds = _kinds()
    lines = (
        [
            safe_text(str(v)) if k == "text" else csv_number(v, k)
            for v, k in zip(line, kinds, strict=True)
        ]
        for line in data
    )
    return "".join(csv_lines(headers, lines))


def typed_cell(sheet: WriteOnlyWorksheet, value: Any, kind: str = "text") -> Any:
    """A write-only cell: text is always text (never a formula), numbers are numbers."""
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    elif kind == "rate":
        cell.number_format = "0.0%"
    elif kind == "minutes":
        cell.number_format = "0.0"
    return cell


def sla_xlsx(rows: Sequence[SlaRow], title: str, period: str) -> bytes:
    _, headers, data = table(rows)
    kinds = _kinds()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("SLA")
    sheet.freeze_panes = "C4"
    sheet.append([typed_cell(sheet, title)])
    sheet.append([typed_cell(sheet, f"Период: {period}")])
    sheet.append([typed_cell(sheet, h) for h in headers])
    for line in data:
        sheet.append([typed_cell(sheet, v, k) for v, k in zip(line, kinds, strict=True)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
