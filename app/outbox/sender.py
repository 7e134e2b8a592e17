"""The outbox sender: publishes replies on the platforms and delivers outgoing webhooks.

Replies, one at a time: claim one (FOR UPDATE SKIP LOCKED on PostgreSQL, mark it
'sending' with a lease, commit), call the platform with no transaction open, then
record the outcome in a new transaction. An item whose sender died keeps 'sending'
until its lease runs out and is then picked up again. For VK that is safe (guid and
random_id come from the item id, so VK drops the repeat); Telegram, OK and MAX have
no such key, so an item whose outcome is unknown there is stopped and shown to the
operator rather than risk a second public answer.

Outgoing webhooks go in batches (`app.outbox.outgoing_webhooks`); a run alternates a
batch of them with up to `REPLIES_PER_ROUND` replies, so neither starves.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from app.directory import service as directory_service
from app.jobs.context import JobContext
from app.outbox import rates
from app.outbox.outcomes import (
    GAVE_UP,
    REPLY_MAX_ATTEMPTS,
    SENDING_LEASE,
    Claimed,
    defer,
    due,
    fail,
    is_due,
    retry,
)
from app.outbox.outgoing_webhooks import WEBHOOK_BATCH, deliver_webhooks
from app.questions import outgoing, timeline
from app.questions.models import (
    Message,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Question,
    QuestionStatus,
)
from app.sla import service as sla_service
from webhooks import (
    PageSecrets,
    PermanentError,
    Published,
    Reply,
    TransientError,
    get_adapter,
)

log = logging.getLogger("otklik.outbox")

INLINE_WAIT = 2.0  # wait this long for a rate-limit slot in place, else come back later
BATCH = 100  # items one run handles at most
REPLIES_PER_ROUND = 10  # replies between two batches of webhooks (neither starves)

# Platforms whose send carries an idempotency key derived from the item id.
IDEMPOTENT_PLATFORMS = frozenset({"vk"})

_OUTCOME_UNKNOWN = (
    "outcome_unknown",
    "Отправка прервалась, и неизвестно, опубликован ли ответ. Проверьте страницу на "
    "платформе: если ответа нет, повторите отправку; если есть, закройте вопрос.",
)
_PARTLY_PUBLISHED = (
    "partly_published",
    "Ответ отправлялся частями: первые части опубликованы, следующая не прошла. Откройте "
    "страницу на платформе и допишите гражданину недостающую часть ответа там.",
)
_PAGE_DISABLED = (
    "page_disabled",
    "Страница отключена в Отклике, ответ не отправлен. Включите страницу и повторите отправку.",
)
_UNREADABLE_TOKEN = (
    "token_unreadable",
    "Ключ доступа страницы не удаётся расшифровать (сменился секретный ключ Отклика?). "
    "Введите ключ доступа в карточке страницы заново и повторите отправку.",
)


def send_outbox(
    ctx: JobContext,
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    limit: int = BATCH,
) -> int:
    """Publish due outbox items; returns how many were handled (sent, retried or failed).

    Each step is a transaction of its own (claim, record the outcome), and none is open
    while a platform is called. `sleep` and `jitter` exist for tests (a frozen clock
    that sleeping advances, no randomness).
    """
    if not ctx.anything(_DUE.where(is_due(ctx.clock()))):
        return 0  # the usual run: nothing to send
    handled = 0
    while handled < limit and not ctx.stopping.is_set():
        webhooks = deliver_webhooks(ctx, jitter, min(WEBHOOK_BATCH, limit - handled))
        handled += webhooks
        replies = 0
        while replies < REPLIES_PER_ROUND and handled < limit and not ctx.stopping.is_set():
            claimed = _claim(ctx, ctx.clock(), OutboxKind.reply)
            if claimed is None:
                break
            try:
                _send_reply(ctx, claimed, sleep, jitter)
            except Exception:
                # A bug or the database, perhaps after the platform accepted the reply:
                # leave the item 'sending', so its lease decides (a safe retry or a stop).
                log.exception("outbox item crashed", extra={"fields": {"item": claimed.id}})
            handled += 1
            replies += 1
        if webhooks == 0 and replies == 0:
            break
    return handled


_DUE = sa.select(col(OutboxItem.id))


def _claim(ctx: JobContext, now: datetime, kind: OutboxKind) -> Claimed | None:
    with ctx.transaction() as session:
        item = session.exec(due(now, kind).limit(1)).first()
        if item is None or item.id is None:
            return None
        claimed = Claimed(
            id=item.id,
            kind=item.kind,
            attempts=item.attempts + 1,
            stuck=item.status == OutboxStatus.sending,
        )
        item.status = OutboxStatus.sending
        item.attempts = claimed.attempts
        # While 'sending', next_attempt_at is the end of the lease.
        item.next_attempt_at = now + SENDING_LEASE
        session.add(item)
        return claimed


# --- replies ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    platform: str
    page_id: int
    payload: dict[str, Any]
    secrets: PageSecrets


def _reply_target(ctx: JobContext, claimed: Claimed) -> _Target | tuple[str, str, str]:
    """Where and what to publish, or why it cannot be (code, message, detail)."""
    with ctx.transaction() as session:
        item = session.get(OutboxItem, claimed.id)
        assert item is not None
        page = directory_service.get_page(session, item.page_id) if item.page_id else None
        if page is None or not page.is_active:
            return (*_PAGE_DISABLED, "page missing or inactive")
        platform = str(page.platform)
        try:
            secrets = directory_service.page_secrets(
                page, ctx.cipher, ctx.settings.api_url(platform)
            )
        except ValueError as exc:
            return (*_UNREADABLE_TOKEN, str(exc))
        return _Target(platform, page.id or 0, dict(item.payload), secrets)


def _send_reply(
    ctx: JobContext,
    claimed: Claimed,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
) -> None:
    if claimed.stuck and claimed.attempts > REPLY_MAX_ATTEMPTS:
        fail(ctx, claimed, *GAVE_UP, detail="crashed on every attempt")
        return
    target = _reply_target(ctx, claimed)
    if isinstance(target, tuple):
        code, message, detail = target
        fail(ctx, claimed, code, message, detail=detail)
        return
    platform, payload, secrets = target.platform, target.payload, target.secrets
    if claimed.stuck and platform not in IDEMPOTENT_PLATFORMS:
        fail(ctx, claimed, *_OUTCOME_UNKNOWN, detail="lease expired while sending")
        return
    ref: dict[str, str] = dict(payload.get("reply_ref") or {})
    limits = rates.limits_for(platform, target.page_id, ref)
    with ctx.transaction() as session:
        slot, taken = rates.reserve(session, limits, ctx.clock(), INLINE_WAIT)
    if not taken:
        defer(ctx, claimed, slot)
        return
    wait = (slot - ctx.clock()).total_seconds()
    if wait > 0:
        sleep(wait)
    reply = Reply(
        id=claimed.id,
        text=str(payload.get("text", "")),
        reply_ref=ref,
        thread_key=str(payload.get("thread_key", "")),
    )
    answers = _Answers(ctx.http)
    try:
        published = get_adapter(platform).send_reply(cast(httpx.Client, answers), secrets, reply)
    except PermanentError as exc:
        fail(ctx, claimed, exc.code, exc.message_ru, detail=str(exc))
    except TransientError as exc:
        if platform not in IDEMPOTENT_PLATFORMS:
            if answers.accepted_last:
                # The platform took the request (2xx) and answered with nothing usable: it
                # has most likely published; a retry would be a second public answer.
                fail(ctx, claimed, *_OUTCOME_UNKNOWN, detail=f"malformed answer: {exc}")
                return
            if answers.accepted:
                # A long reply sent in parts: the first went out, a later one failed.
                fail(ctx, claimed, *_PARTLY_PUBLISHED, detail=str(exc))
                return
            if _maybe_delivered(exc):
                fail(ctx, claimed, *_OUTCOME_UNKNOWN, detail=str(exc))
                return
        if exc.retry_after:
            until = ctx.clock() + timedelta(seconds=exc.retry_after)
            with ctx.transaction() as session:
                rates.push_back(session, limits, until)
        retry(ctx, claimed, str(exc), exc.retry_after, jitter, reason_ru=transient_reason(exc))
    else:
        _record_published(ctx, claimed, published)


class _Answers:
    """The shared HTTP client, noting what the platform answered during one publication.

    Adapters call `post` once per request (one per part of a long reply); knowing that a
    request was accepted (2xx) tells a failure that may repeat a post from one that cannot.
    """

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self.statuses: list[int] = []

    def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        response = self._client.post(*args, **kwargs)
        self.statuses.append(response.status_code)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    @property
    def accepted(self) -> bool:
        return any(200 <= status < 300 for status in self.statuses)

    @property
    def accepted_last(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


def transient_reason(exc: TransientError) -> str:
    """The platform's failure in the operator's words (the adapters' own text is English)."""
    cause = exc.__cause__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
        return "Платформа недоступна: не удалось соединиться с её сервером."
    if isinstance(cause, httpx.TimeoutException):
        return "Платформа не ответила вовремя."
    if isinstance(cause, httpx.TransportError):
        return "Сбой сети при обращении к платформе."
    if exc.retry_after:
        return "Платформа просит подождать: слишком много запросов."
    status = re.search(r"HTTP (\d{3})", exc.message)
    if status:
        return f"Сервер платформы ответил ошибкой (HTTP {status.group(1)})."
    return "Платформа временно не приняла ответ."


def _maybe_delivered(exc: TransientError) -> bool:
    """Did the request perhaps reach the platform (a read timeout, a dropped answer)?"""
    cause = exc.__cause__
    if not isinstance(cause, httpx.TransportError):
        return False
    return not isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _record_published(ctx: JobContext, claimed: Claimed, published: Published) -> None:
    at = published.sent_at or ctx.clock()  # the platform's time when its answer has one
    with ctx.transaction() as session:
        item = session.get(OutboxItem, claimed.id)
        assert item is not None and item.message_id is not None and item.question_id is not None
        message = session.get(Message, item.message_id)
        # Under the question's row lock (as the operator's actions take it): an operator's
        # status change or transfer at the same moment is not written over.
        question = session.get(
            Question, item.question_id, with_for_update=True, populate_existing=True
        )
        assert message is not None and question is not None and question.id is not None
        # The platform's echo may have been ingested before this commit and stored as a
        # native reply under the same key: it is this reply, already counted as a response.
        echo = session.exec(
            select(Message).where(
                Message.page_id == message.page_id,
                Message.external_id == published.source_key,
                Message.id != message.id,
            )
        ).first()
        if echo is not None:
            session.delete(echo)
            session.flush()
        message.sent_at = at
        message.external_id = published.source_key
        message.permalink = published.permalink
        session.add(message)
        item.status = OutboxStatus.sent
        item.sent_at = at
        item.external_id = published.external_id
        item.next_attempt_at = None
        item.error_code = item.error_message = None
        session.add(item)
        interim = bool(item.payload.get("interim"))
        expected_raw = item.payload.get("expected_at")
        expected_at = datetime.fromisoformat(expected_raw) if expected_raw else None
        if question.first_response_at is None:
            question.first_response_at = at
        if question.status not in (QuestionStatus.closed, QuestionStatus.withdrawn):
            question.status = QuestionStatus.in_progress if interim else QuestionStatus.answered
        if interim:
            question.interim_expected_at = expected_at
        question.updated_at = ctx.clock()
        session.add(question)
        session.flush()
        if echo is None:
            data: dict[str, Any] = {
                "message_id": message.id,
                "outbox_item_id": item.id,
                "source": "otklik",
                "external_id": published.external_id,
                "permalink": published.permalink,
                "interim": interim,
            }
            timeline.record(
                session, question.id, "response", at, actor_id=item.created_by, data=data
            )
            sla_service.on_response(
                session, question, at=at, interim=interim, expected_at=expected_at
            )
            if not interim:
                outgoing.emit(session, "question.answered", question, at, data)
    log.info("reply published", extra={"fields": {"item": claimed.id, "key": published.source_key}})
