"""The weekly report of a supervisor's scope: last week's dashboard figures, the
ranking with its change, and every question whose deadline was broken, as XLSX."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from sqlmodel import Session, col

from app.auth.models import User
from app.questions.models import Question
from app.reports import dashboard, exports, periods, population, question_export
from app.reports.dashboard import Dashboard
from app.reports.figures import SlaRow
from app.reports.population import ReportFilter, visible_conditions
from app.sla.models import ClockState, SlaClock


def breached_ids(session: Session, user: User, f: ReportFilter) -> sa.Select[Any]:
    """The questions of the period in scope with a clock breached or missed (the
    `breached` figure of `figures`)."""
    late = (
        sa.select(sa.literal(1))
        .where(
            col(SlaClock.question_id) == col(Question.id),
            sa.or_(
                col(SlaClock.breached_at).is_not(None),
                col(SlaClock.state).in_([str(ClockState.breached), str(ClockState.missed)]),
            ),
        )
        .exists()
    )
    return sa.select(col(Question.id)).where(
        col(Question.created_at) >= f.start,
        col(Question.created_at) < f.end,
        late,
        *visible_conditions(session, user, f, col(Question.institution_id)),
    )


def _headline(row: SlaRow) -> list[tuple[str, Any, Any, str]]:
    before = row.previous
    return [
        ("Получено вопросов", row.questions, before.questions if before else None, "int"),
        ("Первый ответ в срок", row.on_time, before.on_time if before else None, "int"),
        ("Первый ответ с опозданием", row.late, before.late if before else None, "int"),
        ("Доля в срок", row.on_time_rate, before.on_time_rate if before else None, "rate"),
        (
            "Медиана первого ответа, раб. мин",
            row.median_first_response_working_minutes,
            before.median_first_response_working_minutes if before else None,
            "minutes",
        ),
        (
            "90-й процентиль, раб. мин",
            row.p90_first_response_working_minutes,
            before.p90_first_response_working_minutes if before else None,
            "minutes",
        ),
        ("С нарушением срока", row.breached, None, "int"),
        ("Снято без ответа", row.dismissed, None, "int"),
        ("Ответы через Отклик", row.answered_otklik, None, "int"),
        ("Ответы на платформе", row.answered_native, None, "int"),
    ]


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    dashboard: Dashboard
    period: periods.Period
    period_text: str
    content: bytes


def workbook(
    session: Session,
    user: User,
    *,
    now: datetime,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: str | None = None,
) -> bytes:
    """Last week (Monday to Sunday in the scope's zone) as an XLSX workbook. Raises
    NotFound for a scope outside the caller's."""
    return build(
        session,
        user,
        now=now,
        territory_id=territory_id,
        institution_id=institution_id,
        sector=sector,
    ).content


def build(
    session: Session,
    user: User,
    *,
    now: datetime,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: str | None = None,
) -> WeeklyReport:
    """Last week's figures of the scope and their workbook (see `workbook`)."""
    tz = population.timezone_of(session, user, territory_id, institution_id)
    span = periods.resolve("last_week", now, tz)
    d = dashboard.dashboard(
        session,
        user,
        span,
        now=now,
        territory_id=territory_id,
        institution_id=institution_id,
        sector=sector,
    )
    book = Workbook(write_only=True)
    period = periods.period_text(span.start, span.end, tz)
    summary = book.create_sheet("Итоги")
    t = exports.typed_cell
    summary.append([t(summary, f"Еженедельный отчёт: {d.scope_name}")])
    summary.append([t(summary, f"Период: {period}")])
    summary.append([t(summary, h) for h in ("Показатель", "Неделя", "Неделей раньше")])
    for label, value, before, kind in _headline(d.headline):
        summary.append([t(summary, label), t(summary, value, kind), t(summary, before, kind)])
    summary.append([t(summary, "Открыто сейчас"), t(summary, d.now.open, "int")])
    summary.append([t(summary, "Просрочено сейчас"), t(summary, d.now.overdue, "int")])
    ranking = book.create_sheet("Рейтинг")
    _, headers, data = exports.table(d.ranking)
    ranking.append([t(ranking, f"Рейтинг по доле ответов в срок, худшие сверху. {period}")])
    ranking.append([t(ranking, h) for h in [*headers, "Доля в срок неделей раньше"]])
    kinds = [k for _, _, k in exports.COLUMNS] + ["int"] * (len(headers) - len(exports.COLUMNS))
    for row, line in zip(d.ranking, data, strict=True):
        before = row.previous.on_time_rate if row.previous else None
        ranking.append(
            [t(ranking, v, k) for v, k in zip(line, kinds, strict=True)]
            + [t(ranking, before, "rate")]
        )
    breaches = book.create_sheet("Нарушения")
    breaches.append([t(breaches, f"Вопросы с нарушением срока. {period}")])
    breaches.append([t(breaches, h) for h, _ in question_export.HEADERS])
    f = ReportFilter(span.start, span.end, territory_id, institution_id, "total", sector)
    for values in question_export.rows(session, breached_ids(session, user, f), tz):
        breaches.append(
            [
                t(breaches, exports.safe_text(v) if isinstance(v, str) else v, kind)
                for v, (_, kind) in zip(values, question_export.HEADERS, strict=True)
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return WeeklyReport(d, span, period, buffer.getvalue())
