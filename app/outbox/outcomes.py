"""What happens to an outbox item after an attempt: sent later (backoff), deferred, failed.

Which items are due (`due`), and the lease a sender takes on one it claims
(`SENDING_LEASE`), are here too: replies (`sender`) and outgoing webhooks
(`outgoing_webhooks`) are claimed alike. Each outcome is recorded only if the item is
still this sender's claim, so a sender that lost its lease cannot overwrite what another
one did since.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.jobs.context import JobContext
from app.questions import timeline
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus

log = logging.getLogger("otklik.outbox")

SENDING_LEASE = timedelta(minutes=5)  # far above the HTTP client's timeouts
REPLY_MAX_ATTEMPTS = 12  # with the delays below: about four hours of trying
WEBHOOK_MAX_ATTEMPTS = 10
BASE_DELAY = 10.0  # seconds before the first retry; doubles with each attempt
MAX_DELAY = 3600.0

GAVE_UP = (
    "gave_up",
    "Платформа долго не принимает ответ (сбой сети или ограничение частоты). Ответ не "
    "опубликован. Повторите отправку позже или ответьте гражданину на платформе.",
)
WEBHOOK_GAVE_UP = (
    "gave_up",
    "Адрес подписки не принимает события. Проверьте его доступность и ключ подписи.",
)
# While an item waits for its next attempt, error_code says so and error_message gives the
# last attempt's reason in Russian: the operator sees it without reading the server log.
RETRYING = "retrying"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: OutboxKind
    attempts: int
    stuck: bool  # it was 'sending' when claimed: the previous sender never finished


def is_due(now: datetime) -> sa.ColumnElement[bool]:
    """To send now (or its sender's lease ran out)."""
    return sa.and_(
        col(OutboxItem.status).in_([OutboxStatus.pending, OutboxStatus.sending]),
        sa.or_(
            col(OutboxItem.next_attempt_at).is_(None),
            col(OutboxItem.next_attempt_at) <= now,
        ),
    )


def due(now: datetime, kind: OutboxKind) -> Any:
    """Items of `kind` to send now (or whose sender's lease ran out), oldest due first."""
    return (
        select(OutboxItem)
        .where(col(OutboxItem.kind) == kind, is_due(now))
        .order_by(col(OutboxItem.next_attempt_at), col(OutboxItem.id))
        .with_for_update(skip_locked=True)
    )


def backoff(attempts: int, retry_after: float | None, jitter: float) -> float:
    """Seconds before the next attempt: the platform's retry_after when it gave one,
    else BASE_DELAY doubled per attempt up to MAX_DELAY; `jitter` in [0, 1) spreads
    retries so that items failed together do not come back together."""
    if retry_after is not None and retry_after > 0:
        return retry_after + jitter * min(5.0, 0.1 * retry_after + 0.5)
    delay: float = min(MAX_DELAY, BASE_DELAY * 2.0 ** max(0, attempts - 1))
    return delay * (1 + 0.5 * jitter)


def current(session: Session, claimed: Claimed) -> OutboxItem | None:
    """The item, if it is still ours: 'sending' from this claim (not re-claimed since)."""
    item = session.get(OutboxItem, claimed.id)
    if item is None or item.status != OutboxStatus.sending or item.attempts != claimed.attempts:
        return None
    return item


def retry(
    ctx: JobContext,
    claimed: Claimed,
    error: str,
    retry_after: float | None,
    jitter: Callable[[], float],
    *,
    reason_ru: str = "Платформа временно не приняла запрос.",
) -> None:
    """Try again later (or give up after the last attempt). The item keeps the raw error
    in `last_error` and the reason in Russian, with the attempt count, in `error_message`
    (`error_code` "retrying") while it waits."""
    limit = REPLY_MAX_ATTEMPTS if claimed.kind == OutboxKind.reply else WEBHOOK_MAX_ATTEMPTS
    if claimed.attempts >= limit:
        code, message = GAVE_UP if claimed.kind == OutboxKind.reply else WEBHOOK_GAVE_UP
        fail(ctx, claimed, code, message, detail=error)
        return
    with ctx.transaction() as session:
        item = current(session, claimed)
        if item is None:
            return
        item.status = OutboxStatus.pending
        item.last_error = error[:2000]
        item.error_code = RETRYING
        item.error_message = (
            f"{reason_ru} Попытка {claimed.attempts} из {limit} не удалась; "
            "Отклик повторит отправку сам."
        )
        delay = backoff(claimed.attempts, retry_after, jitter())
        item.next_attempt_at = ctx.clock() + timedelta(seconds=delay)
        session.add(item)
    log.warning("outbox retry", extra={"fields": {"item": claimed.id, "error": error}})


def defer(ctx: JobContext, claimed: Claimed, until: datetime) -> None:
    """Rate limited on our side: come back at the free slot; not a failed attempt."""
    with ctx.transaction() as session:
        item = current(session, claimed)
        if item is None:
            return
        item.status = OutboxStatus.pending
        item.attempts = claimed.attempts - 1
        item.next_attempt_at = until
        session.add(item)


def fail(
    ctx: JobContext,
    claimed: Claimed,
    code: str,
    message_ru: str,
    *,
    detail: str,
) -> None:
    """Stop for good: the operator sees why. The reply is not a response: SLA keeps running."""
    with ctx.transaction() as session:
        item = current(session, claimed)
        if item is None:
            return
        item.status = OutboxStatus.failed
        item.error_code = code[:64]
        item.error_message = message_ru
        item.last_error = detail[:2000]
        item.next_attempt_at = None
        session.add(item)
        if item.kind == OutboxKind.reply and item.question_id is not None:
            timeline.record(
                session,
                item.question_id,
                "reply_failed",
                ctx.clock(),
                actor_id=item.created_by,
                data={
                    "outbox_item_id": item.id,
                    "message_id": item.message_id,
                    "error_code": code,
                    "message": message_ru,
                },
            )
    log.warning("outbox item failed", extra={"fields": {"item": claimed.id, "code": code}})
