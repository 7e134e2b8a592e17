"""One row per question: the export of any list or drill-down, streamed.

CSV goes out line by line as the database hands rows over (`yield_per`); XLSX is
written by openpyxl's write-only mode, which keeps only the current row in memory,
into a temporary file that is then sent in chunks. So 100,000 questions export in
flat memory. Text that a spreadsheet would run as a formula is neutralised.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlmodel import Session, col, select

from app.core import format as fmt
from app.directory.models import Institution, Page
from app.questions.models import STATUS_NAMES_RU, Question, QuestionStatus
from app.reports.exports import XLSX, csv_lines, csv_number, safe_text, typed_cell
from app.routing.models import Category
from app.routing.service import DISMISS_REASONS_RU
from app.sla.models import ClockState, SlaClock, Target

__all__ = ["HEADERS", "LARGE", "XLSX", "csv_stream", "names", "rows", "xlsx_stream"]

# Past this many rows the page says the export takes a while.
LARGE = 5000
_BATCH = 1000
_CHUNK = 64 * 1024
CLASSES_RU = {
    "question": "Вопрос",
    "complaint": "Жалоба",
    "gratitude": "Благодарность",
    "spam": "Спам",
    "other": "Не вопрос",
}
FIRST_RESPONSE_RU = {
    ClockState.met: "вовремя",
    ClockState.missed: "с опозданием",
    ClockState.breached: "просрочен",
    ClockState.running: "идёт",
    ClockState.warning: "скоро срок",
    ClockState.paused: "на паузе",
}
# (Russian header, kind) in the order of `_row`.
HEADERS: tuple[tuple[str, str], ...] = (
    ("№", "int"),
    ("Получен", "date"),
    ("Учреждение", "text"),
    ("Страница", "text"),
    ("Соцсеть", "text"),
    ("Житель", "text"),
    ("Тип", "text"),
    ("Категория", "text"),
    ("Первая реакция", "date"),
    ("Окончательный ответ", "date"),
    ("Первый ответ за, раб. мин", "minutes"),
    ("Срок первого ответа", "text"),
    ("Просрочка, раб. мин", "minutes"),
    ("Статус", "text"),
    ("Причина снятия", "text"),
    ("Ссылка", "text"),
    ("Текст", "text"),
)


def names(session: Session, rows: Sequence[Question]) -> dict[str, dict[int, str]]:
    """Institution and page names of the questions shown, in two queries."""
    inst_ids = {q.institution_id for q in rows}
    page_ids = {q.page_id for q in rows}
    return {
        "institution": {
            i.id or 0: i.name
            for i in session.exec(select(Institution).where(col(Institution.id).in_(inst_ids)))
        },
        "page": {
            p.id or 0: p.name for p in session.exec(select(Page).where(col(Page.id).in_(page_ids)))
        },
    }


def _query(ids: sa.Select[Any]) -> Any:
    first = sa.orm.aliased(SlaClock)
    final = sa.orm.aliased(SlaClock)
    return (
        sa.select(
            col(Question.id),
            col(Question.created_at),
            col(Institution.name),
            col(Page.name),
            col(Question.platform),
            col(Question.citizen_name),
            col(Question.citizen_platform_id),
            col(Question.classification),
            col(Category.name),
            col(Question.first_response_at),
            sa.func.coalesce(col(final.done_at), col(Question.closed_at)),
            col(first.working_minutes),
            col(first.state),
            col(first.target_minutes),
            col(Question.status),
            col(Question.dismiss_reason),
            col(Question.permalink),
            col(Question.text),
        )
        .join(Institution, col(Institution.id) == col(Question.institution_id))
        .join(Page, col(Page.id) == col(Question.page_id))
        .outerjoin(Category, col(Category.id) == col(Question.category_id))
        .outerjoin(
            first,
            sa.and_(
                col(first.question_id) == col(Question.id),
                col(first.target) == Target.first_response,
            ),
        )
        .outerjoin(
            final,
            sa.and_(
                col(final.question_id) == col(Question.id),
                col(final.target) == Target.final_answer,
            ),
        )
        .where(col(Question.id).in_(ids.scalar_subquery()))
        .order_by(col(Question.created_at), col(Question.id))
        .execution_options(yield_per=_BATCH)
    )


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else value.astimezone(tz).replace(tzinfo=None)


def mask_name(name: str) -> str:
    """«Ирина Смирнова» → «И. С.»: enough to tell rows apart, not to identify anyone."""
    initials = [f"{word[0]}." for word in name.split() if word[:1].isalpha()]
    return " ".join(initials[:3]) or "скрыто"


def citizen(name: str | None, platform_id: str | None, *, mask: bool) -> str:
    if mask:
        return mask_name(name) if name else "скрыто"
    return name or (f"id {platform_id}" if platform_id else "")


def rows(
    session: Session, ids: sa.Select[Any], tz: str, *, mask: bool = False
) -> Iterator[list[Any]]:
    """One list of cells per question, in `HEADERS` order; times local to `tz`;
    with `mask`, citizens' names are reduced to initials."""
    zone = ZoneInfo(tz)
    for (
        qid,
        created,
        institution,
        page,
        platform,
        citizen_name,
        citizen_id,
        classification,
        category,
        first_at,
        final_at,
        working,
        state,
        target,
        status,
        reason,
        permalink,
        text,
    ) in session.execute(_query(ids)):
        late = None
        if state == ClockState.missed and working is not None and target:
            late = round(max(0.0, working - target), 1)
        yield [
            qid,
            _local(created, zone),
            institution,
            page,
            fmt.platform_name(platform),
            citizen(citizen_name, citizen_id, mask=mask),
            CLASSES_RU.get(str(classification), "Другое"),
            category or "",
            _local(first_at, zone),
            _local(final_at, zone),
            None if working is None else round(working, 1),
            FIRST_RESPONSE_RU.get(ClockState(state), "") if state else "",
            late,
            STATUS_NAMES_RU.get(QuestionStatus(status), str(status)),
            DISMISS_REASONS_RU.get(reason, reason or "") if reason else "",
            permalink or "",
            text,
        ]


def csv_stream(
    session: Session, ids: sa.Select[Any], tz: str, *, mask: bool = False
) -> Iterator[bytes]:
    """The questions `ids` selects as CSV for Excel in a Russian locale, line by line;
    times are local to `tz`."""
    kinds = [k for _, k in HEADERS]

    def cell(value: Any, kind: str) -> str:
        if value is None:
            return ""
        if kind == "date":
            return f"{value:%d.%m.%Y %H:%M}"
        if kind in ("int", "minutes"):
            return csv_number(value)
        return safe_text(str(value))

    lines = (
        [cell(v, k) for v, k in zip(row, kinds, strict=True)]
        for row in rows(session, ids, tz, mask=mask)
    )
    for line in csv_lines([h for h, _ in HEADERS], lines):
        yield line.encode("utf-8")


def xlsx_stream(
    session: Session, ids: sa.Select[Any], tz: str, title: str, *, mask: bool = False
) -> Iterator[bytes]:
    """The questions `ids` selects as an Excel workbook written row by row into a
    temporary file, then sent in chunks."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Вопросы")
    sheet.freeze_panes = "A3"
    sheet.append([typed_cell(sheet, f"{title} (время: {fmt.zone_label(tz)})")])
    sheet.append([typed_cell(sheet, h) for h, _ in HEADERS])
    # Plain values are several times faster than styled cells in openpyxl: only the
    # dates carry a format. Text never starts like a formula (`safe_text`) and loses
    # the control characters XLSX cannot hold.
    stamp = "DD.MM.YYYY HH:MM"
    kinds = [kind for _, kind in HEADERS]
    for row in rows(session, ids, tz, mask=mask):
        cells: list[Any] = []
        for value, kind in zip(row, kinds, strict=True):
            if isinstance(value, str):
                cells.append(ILLEGAL_CHARACTERS_RE.sub("", safe_text(value)))
            elif kind == "date" and value is not None:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = stamp
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    with tempfile.TemporaryFile() as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(_CHUNK):
            yield chunk
