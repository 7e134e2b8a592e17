"""The weekly report e-mailed to each supervisor on Monday morning in their zone.

A background job (`weekly_reports`, registered in `app.main`): from Monday 08:00 in
the supervisor's zone (their profile's, else their territory's) until the week ends,
every supervisor with an e-mail address who has not had last week's report gets it:
a few lines of figures and the workbook of `app.reports.weekly` attached. A run after
a weekend without a worker still sends it (on Monday afternoon, or Tuesday).

Once per supervisor and week, across any number of workers: the report is claimed by
inserting a notification under the unique key `weekly:<ISO week>` (already read and
delivered, so the bell stays quiet and the alert sender ignores it; it also shows in
the supervisor's list that the report went out). A failed send gives the claim back,
so a later run tries again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Notification, Role, User
from app.core import format as fmt
from app.jobs.context import JobContext
from app.notifications import mail
from app.reports import periods, population

if TYPE_CHECKING:
    from app.reports import weekly

log = logging.getLogger("otklik.reports")

SEND_FROM_HOUR = 8
KIND = "weekly_report"


def _zone(session: Session, user: User) -> str:
    return user.timezone or population.timezone_of(session, user, None, None)


def week_key(now: datetime, timezone: str) -> str | None:
    """The ISO week ('2026-W11') whose report is due at `now` in the zone, or None
    before Monday 08:00 local."""
    local = now.astimezone(ZoneInfo(timezone))
    if local.weekday() == 0 and local.hour < SEND_FROM_HOUR:
        return None
    year, week, _ = (local.date() - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def _claim(session: Session, user: User, key: str, now: datetime, text: str) -> bool:
    """True if this run may send the report (no other run has claimed it)."""
    assert user.id is not None
    taken = session.exec(
        select(Notification.id).where(
            Notification.user_id == user.id, Notification.dedupe_key == f"weekly:{key}"
        )
    ).first()
    if taken is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                Notification(
                    user_id=user.id,
                    kind=KIND,
                    text=text,
                    dedupe_key=f"weekly:{key}",
                    created_at=now,
                    read_at=now,
                    delivered_at=now,
                )
            )
    except sa.exc.IntegrityError:  # another worker claimed it first
        return False
    return True


def body(report: weekly.WeeklyReport, base_url: str) -> str:
    d = report.dashboard
    h = d.headline
    judged = h.on_time + h.late
    rate = "—" if h.on_time_rate is None else f"{fmt.number(round(h.on_time_rate * 100, 1))} %"
    worst = [r for r in d.ranking if r.on_time_rate is not None][:3]
    lines = [
        f"Еженедельный отчёт: {d.scope_name}",
        f"Неделя: {report.period_text}",
        "",
        f"Получено: {fmt.count(h.questions, 'вопрос', 'вопроса', 'вопросов')}",
        f"Первый ответ в срок: {rate} ({h.on_time} из {judged})",
        f"С нарушением срока: {h.breached}",
        f"Просрочено сейчас: {d.now.overdue} из {d.now.open} открытых",
    ]
    if worst:
        lines += ["", "Меньше всего ответов в срок:"]
        lines += [
            f"  {r.name}: {fmt.number(round((r.on_time_rate or 0) * 100, 1))} %" for r in worst
        ]
    lines += [
        "",
        "Рейтинг и список нарушений — в приложенном файле Excel.",
        f"Сводка: {base_url.rstrip('/')}/dashboard?period=last_week",
    ]
    return "\n".join(lines)


def send_weekly_reports(ctx: JobContext) -> int:
    """E-mail last week's report to every supervisor due one; how many were sent."""
    if not mail.enabled(ctx.settings):
        return 0
    now = ctx.clock()
    sent = 0
    with ctx.transaction(reading=True) as session:
        users = session.exec(
            select(User).where(
                User.role == Role.supervisor,
                col(User.is_active).is_(True),
                col(User.email).is_not(None),
                User.email != "",
            )
        ).all()
        due = [(u, key) for u in users if (key := week_key(now, _zone(session, u)))]
    for user, key in due:
        if ctx.stopping.is_set():
            break
        with ctx.transaction() as session:
            zone = _zone(session, user)
            span = periods.resolve("last_week", now, zone)
            text = (
                f"Отчёт за неделю {periods.period_text(span.start, span.end, zone)} "
                f"отправлен на {user.email}"
            )
            # Claimed first: a report another worker sends is not built twice.
            if not _claim(session, user, key, now, text):
                continue
            # Imported when a report is due: it brings openpyxl, a tenth of a worker's
            # start-up.
            from app.reports import weekly

            report = weekly.build(session, user, now=now)
        assert user.email is not None
        try:
            mail.send(
                ctx.settings,
                user.email,
                f"Отклик: отчёт за неделю {report.period_text}",
                body(report, ctx.settings.base_url),
                [
                    mail.Attachment(
                        f"otchet-{key}.xlsx",
                        report.content,
                        "application",
                        "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    )
                ],
            )
        except Exception as exc:
            log.warning(
                "weekly report not sent",
                extra={"fields": {"user_id": user.id, "error": str(exc)[:300]}},
            )
            with ctx.transaction() as session:
                session.execute(
                    sa.delete(Notification).where(
                        col(Notification.user_id) == user.id,
                        col(Notification.dedupe_key) == f"weekly:{key}",
                    )
                )
            continue
        sent += 1
    return sent
