"""SLA alerts: who hears about a warning, a breach or an escalation, and how.

Every alert is an in-app notification (a Notification row, unique per user and
key, so the same alert never reaches a person twice). Telegram (through the alert
bot, to `user.telegram_chat_id`) and e-mail (when SMTP is set) follow; a
non-urgent alert raised at night or on a day off waits for the recipient's next
working morning, and everything waiting for one person goes out as one digest.
"""

from __future__ import annotations

import functools
import logging
import smtplib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Notification, User
from app.core import bulk
from app.core import format as fmt
from app.core.config import Settings
from app.directory.models import Territory
from app.jobs.context import JobContext
from app.questions.models import Priority, Question
from app.sla import policies, recipients
from webhooks import telegram_api

_NOTIFICATIONS: sa.Table = Notification.__table__  # type: ignore[attr-defined]

log = logging.getLogger("otklik.sla")

BATCH = 500
RETRY_AFTER = timedelta(minutes=10)
# A channel that keeps failing for a day is given up on; the in-app alert stays.
GIVE_UP_AFTER = timedelta(hours=24)
TELEGRAM_LIMIT = 4000


# --- raising alerts ----------------------------------------------------------------


def _timezone(session: Session, user: User, institution_id: int) -> str:
    if user.timezone:  # chosen in the profile
        return user.timezone
    if user.territory_id is not None:
        territory = session.get(Territory, user.territory_id)
        if territory is not None:
            return territory.timezone
    return policies.institution_timezone(session, institution_id)


def _channels(user: User | recipients.Recipient, settings: Settings) -> bool:
    telegram = bool(user.telegram_chat_id and settings.telegram_alert_bot_token)
    email = bool(user.email and settings.smtp_host)
    return telegram or email


def deliver_after(session: Session, user: User, question: Question, now: datetime) -> datetime:
    """Now for urgent questions and in working hours; else the recipient's next working morning."""
    return _deliver_after(_timezone(session, user, question.institution_id), question, now)


def _deliver_after(zone: str, question: Question, now: datetime) -> datetime:
    if question.priority == Priority.urgent:
        return now
    return policies.office_calendar(zone).next_working_instant(now)


@functools.lru_cache(maxsize=4096)
def _local(zone: str, at: datetime) -> str:
    # Cached: every recipient of an alert in one zone gets the same text.
    return at.astimezone(ZoneInfo(zone)).strftime("%d.%m %H:%M")


def alert_rows(
    users: Iterable[recipients.Recipient],
    question: Question,
    *,
    kind: str,
    dedupe_key: str,
    text: str,
    due_at: datetime,
    now: datetime,
    settings: Settings,
) -> list[dict[str, Any]]:
    """One notification per user under `dedupe_key`, as column values for
    `insert_alerts`. `{due}` in the text becomes `due_at` in the recipient's local
    time."""
    rows = []
    seen: set[int] = set()
    for user in users:
        if user.id is None or user.id in seen:
            continue
        seen.add(user.id)
        external = _channels(user, settings)
        zone = user.timezone
        rows.append(
            {
                "user_id": user.id,
                "question_id": question.id,
                "kind": kind,
                "text": text.replace("{due}", _local(zone, due_at)),
                "dedupe_key": dedupe_key,
                "created_at": now,
                "deliver_after": _deliver_after(zone, question, now) if external else None,
                # Nothing to send beyond the in-app alert.
                "delivered_at": None if external else now,
            }
        )
    return rows


def insert_alerts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write notifications (`alert_rows`) in one batch, skipping those already there
    (the same user and key): one alert never reaches a person twice."""
    if not rows:
        return
    # One statement for a sweep's alerts (`bulk.insert_many`), not one each.
    bulk.insert_many(session.connection(), _NOTIFICATIONS, rows, skip_conflicts=True)


# --- delivery ----------------------------------------------------------------------


def notifications_url(settings: Settings) -> str:
    """The absolute address of the notifications list (alerts end with their question's)."""
    return f"{settings.base_url.rstrip('/')}/notifications"


def _compose(items: Sequence[Notification], settings: Settings) -> tuple[str, str]:
    """(subject, body) of one alert or of a digest of several. Each alert's text ends
    with its question's address; a digest ends with the notifications list's."""
    if len(items) == 1:
        return items[0].text.split("\n", 1)[0][:200], items[0].text
    noun = fmt.plural(len(items), "уведомление", "уведомления", "уведомлений")
    subject = f"Отклик: {len(items)} {noun} о сроках ответов"
    lines = [subject, ""] + [f"• {n.text}" for n in items]
    lines += ["", f"Все уведомления: {notifications_url(settings)}"]
    return subject, "\n".join(lines)


def send_telegram(ctx: JobContext, chat_id: str, text: str) -> None:
    token = ctx.settings.telegram_alert_bot_token
    assert token is not None
    if len(text) > TELEGRAM_LIMIT:
        text = text[: TELEGRAM_LIMIT - 1] + "…"
    telegram_api.send_message(
        ctx.http,
        ctx.settings.telegram_api_url,
        token.get_secret_value(),
        chat_id,
        text,
        link_preview=False,
    )


def send_email(settings: Settings, to: str, subject: str, body: str) -> None:
    assert settings.smtp_host is not None
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user and settings.smtp_password is not None:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def _send(ctx: JobContext, user: User, items: Sequence[Notification]) -> None:
    subject, body = _compose(items, ctx.settings)
    if user.telegram_chat_id and ctx.settings.telegram_alert_bot_token:
        send_telegram(ctx, user.telegram_chat_id, body)
    if user.email and ctx.settings.smtp_host:
        send_email(ctx.settings, user.email, subject, body)


def deliver_notifications(ctx: JobContext) -> int:
    """Send due alerts by Telegram and e-mail, one message (a digest) per person.

    Claims rows first (FOR UPDATE SKIP LOCKED on PostgreSQL) and marks them sent
    before sending, so no worker sends one twice; a failed send is retried later.
    """
    now = ctx.clock()
    due = sa.and_(col(Notification.delivered_at).is_(None), col(Notification.deliver_after) <= now)
    if not ctx.anything(sa.select(col(Notification.id)).where(due)):
        return 0  # the usual run: nothing to deliver
    with ctx.transaction() as session:
        query = (
            select(Notification)
            .where(due)
            .order_by(col(Notification.user_id), col(Notification.id))
            .limit(BATCH)
        )
        if ctx.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = list(session.exec(query).all())
        for item in claimed:
            item.delivered_at = now
            session.add(item)
        by_user: dict[int, list[Notification]] = defaultdict(list)
        for item in claimed:
            by_user[item.user_id].append(item)
        users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(by_user)))}
    failed: list[Notification] = []
    for user_id, items in by_user.items():
        user = users.get(user_id)
        if user is None:
            continue
        try:
            _send(ctx, user, items)
        except Exception as exc:
            log.warning(
                "alert delivery failed",
                extra={"fields": {"user_id": user_id, "error": str(exc)[:300]}},
            )
            failed.extend(n for n in items if now - n.created_at < GIVE_UP_AFTER)
    if failed:
        with ctx.transaction() as session:
            for item in failed:
                row = session.get(Notification, item.id)
                if row is not None:
                    row.delivered_at = None
                    row.deliver_after = now + RETRY_AFTER
                    session.add(row)
    return len(claimed)
