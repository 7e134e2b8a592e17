"""Linking a user to the Telegram alert bot with a one-time code, the usual way.

The profile makes a code and shows `https://t.me/<bot>?start=<code>`; the user opens
it and presses «Старт», so Telegram sends the bot `/start <code>`. Otklik learns
that message by polling the Bot API (`getUpdates`, the `alert_bot` job) rather than
by a webhook: polling needs no public address, so it works the same on a laptop
behind NAT as on a server. The chat id then goes to `user.telegram_chat_id`, where
the SLA alerts are sent (`sla.notify`).

Any number of workers may run the job: a lease on the bot's row lets one poll at a
time, and the offset moves on in the same transaction that applies the codes.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import AlertBot, TelegramLink, User
from app.core.config import Settings
from app.core.db import insert_ignoring
from app.jobs.context import JobContext
from webhooks import telegram, telegram_api
from webhooks.base import PermanentError, TransientError

log = logging.getLogger("otklik.alert_bot")

CODE_TTL = timedelta(minutes=30)
LEASE = timedelta(seconds=60)
# Readable when typed by hand: no look-alike characters; 10 of 31 symbols ~ 50 bits.
_ALPHABET = "abcdefghijkmnpqrstuvwxyz3456789"
_CODE_LENGTH = 10

LINKED_RU = (
    "Готово{name}: уведомления Отклика о сроках ответов будут приходить сюда. "
    "Отключить их можно в профиле Отклика."
)
BAD_CODE_RU = (
    "Код не подошёл: он устарел или уже использован. Откройте профиль в Отклике, "
    "нажмите «Подключить Telegram» и перейдите по новой ссылке."
)
HELLO_RU = (
    "Это бот уведомлений Отклика. Чтобы получать здесь уведомления о сроках ответов, "
    "откройте профиль в Отклике и нажмите «Подключить Telegram»."
)
UNLINKED_RU = "Уведомления Отклика в этот чат отключены. Включить их снова можно в профиле."


def bot_id(token: str) -> str:
    """The bot's id: the numeric prefix of its token ("123456:ABC..." -> "123456")."""
    prefix = token.partition(":")[0]
    return prefix if prefix.isdigit() else ""


def _token(settings: Settings) -> str | None:
    token = settings.telegram_alert_bot_token
    value = token.get_secret_value().strip() if token is not None else ""
    return value if bot_id(value) else None


def configured(settings: Settings) -> bool:
    return _token(settings) is not None


@dataclass
class Status:
    """What the profile shows: is the bot set up, its username, the user's link or code."""

    configured: bool
    username: str | None
    linked: bool
    code: TelegramLink | None
    error: str | None

    @property
    def link(self) -> str | None:
        if self.code is None or not self.username:
            return None
        return f"https://t.me/{self.username}?start={self.code.code}"


def status(session: Session, user: User, settings: Settings, now: datetime) -> Status:
    token = _token(settings)
    bot = session.get(AlertBot, bot_id(token)) if token else None
    return Status(
        configured=token is not None,
        username=bot.username if bot else None,
        linked=bool(user.telegram_chat_id),
        code=pending_code(session, user, now) if token and not user.telegram_chat_id else None,
        error=bot.error if bot else None,
    )


def pending_code(session: Session, user: User, now: datetime) -> TelegramLink | None:
    link = session.exec(select(TelegramLink).where(TelegramLink.user_id == user.id)).first()
    return link if link is not None and link.expires_at > now else None


def start_linking(session: Session, user: User, now: datetime) -> TelegramLink:
    """A new one-time code for the user (any earlier one stops working)."""
    assert user.id is not None
    session.execute(sa.delete(TelegramLink).where(col(TelegramLink.user_id) == user.id))
    code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
    link = TelegramLink(user_id=user.id, code=code, created_at=now, expires_at=now + CODE_TTL)
    session.add(link)
    session.flush()
    return link


def unlink(session: Session, user: User) -> None:
    """Stop Telegram alerts to the user (the in-app ones stay)."""
    user.telegram_chat_id = None
    session.add(user)
    session.execute(sa.delete(TelegramLink).where(col(TelegramLink.user_id) == user.id))
    session.flush()


def apply_command(session: Session, command: telegram.BotCommand, now: datetime) -> str | None:
    """What one command to the bot does; returns the bot's answer (None: no answer)."""
    if command.command == "start" and command.argument:
        link = session.exec(
            select(TelegramLink).where(TelegramLink.code == command.argument.lower()[:32])
        ).first()
        user = session.get(User, link.user_id) if link is not None else None
        if link is None or link.expires_at <= now or user is None or not user.is_active:
            return BAD_CODE_RU
        # One chat, one user: a chat linked to someone else before is theirs no longer.
        session.execute(
            sa.update(User)
            .where(col(User.telegram_chat_id) == command.chat_id, col(User.id) != user.id)
            .values(telegram_chat_id=None)
        )
        user.telegram_chat_id = command.chat_id
        session.add(user)
        session.delete(link)
        session.flush()
        return LINKED_RU.format(name=f", {user.name}" if user.name else "")
    if command.command == "start":
        return HELLO_RU
    if command.command == "stop":
        result = session.execute(
            sa.update(User)
            .where(col(User.telegram_chat_id) == command.chat_id)
            .values(telegram_chat_id=None)
        )
        return UNLINKED_RU if getattr(result, "rowcount", 0) else HELLO_RU
    return None


def _lease(ctx: JobContext, bot: str, now: datetime) -> AlertBot | None:
    with ctx.transaction() as session:
        session.execute(insert_ignoring(session, AlertBot, {"bot_id": bot, "update_offset": 0}))
        taken = session.execute(
            sa.update(AlertBot)
            .where(
                col(AlertBot.bot_id) == bot,
                sa.or_(col(AlertBot.lease_until).is_(None), col(AlertBot.lease_until) < now),
            )
            .values(lease_until=now + LEASE)
        )
        if not getattr(taken, "rowcount", 0):
            return None
        return session.get(AlertBot, bot)


def _release(ctx: JobContext, bot: str, now: datetime, error: str | None) -> None:
    with ctx.transaction() as session:
        session.execute(
            sa.update(AlertBot)
            .where(col(AlertBot.bot_id) == bot)
            .values(lease_until=None, polled_at=now, error=error)
        )


def _explain(exc: Exception) -> str:
    if isinstance(exc, PermanentError) and exc.code == "token_invalid":
        return (
            "Telegram не принимает токен бота уведомлений: он неверен или отозван. "
            "Получите токен у @BotFather и задайте OTKLIK_TELEGRAM_ALERT_BOT_TOKEN."
        )
    if isinstance(exc, PermanentError):
        return exc.message_ru[:500]
    return f"Telegram недоступен: {exc}"[:500]


def poll_alert_bot(ctx: JobContext) -> int:
    """The periodic job: read the bot's new messages and link the codes they carry.

    Returns how many updates it handled. No transaction is open while Telegram is
    called; a Telegram failure is kept on the bot's row (the profile shows it)."""
    token = _token(ctx.settings)
    if token is None:
        return 0
    bot = bot_id(token)
    now = ctx.clock()
    state = _lease(ctx, bot, now)
    if state is None:
        return 0  # another worker is polling
    api = ctx.settings.telegram_api_url
    try:
        username = state.username or telegram_api.get_me(ctx.http, api, token).get("username")
        updates = telegram_api.get_updates(ctx.http, api, token, state.update_offset)
    except (TransientError, PermanentError) as exc:
        log.warning("alert bot: polling failed", extra={"fields": {"error": str(exc)[:300]}})
        _release(ctx, bot, now, _explain(exc))
        return 0
    answers: list[tuple[str, str]] = []
    with ctx.transaction() as session:
        offset = state.update_offset
        for update in updates:
            command = telegram.bot_command(update)
            if command is not None:
                answer = apply_command(session, command, now)
                if answer:
                    answers.append((command.chat_id, answer))
            update_id = update.get("update_id")
            if isinstance(update_id, int) and not isinstance(update_id, bool):
                offset = max(offset, update_id + 1)
        session.execute(
            sa.update(AlertBot)
            .where(col(AlertBot.bot_id) == bot)
            .values(
                username=username if isinstance(username, str) else None,
                update_offset=offset,
                lease_until=None,
                polled_at=now,
                error=None,
            )
        )
    for chat_id, text in answers:
        try:
            telegram_api.send_message(ctx.http, api, token, chat_id, text, link_preview=False)
        except (TransientError, PermanentError) as exc:
            # The link is made; only the bot's «готово» is lost.
            log.warning("alert bot: answer failed", extra={"fields": {"error": str(exc)[:300]}})
    return len(updates)
