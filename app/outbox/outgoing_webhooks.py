"""Outgoing webhooks, delivered in batches: the events other systems subscribed to.

Up to `WEBHOOK_BATCH` items are claimed in one transaction, with their subscriptions;
each is POSTed with no transaction open; their outcomes are written together in one
more. Two transactions per batch instead of three per item: on a storm day every new
question, answer and breach is an outgoing event. Should the sender die within a batch,
its items keep 'sending' until the lease runs out and are delivered again: receivers
deduplicate by `X-Otklik-Delivery`, as after any lost answer. The outbox sender
(`app.outbox.sender.send_outbox`) runs a batch between its rounds of replies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from app.core import bulk
from app.core.errors import Invalid
from app.jobs.context import JobContext
from app.outbox.outcomes import (
    RETRYING,
    SENDING_LEASE,
    WEBHOOK_GAVE_UP,
    WEBHOOK_MAX_ATTEMPTS,
    Claimed,
    backoff,
    due,
)
from app.outbox.subscriptions import check_target
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
from webhooks.generic import sign

log = logging.getLogger("otklik.outbox")

WEBHOOK_BATCH = 50  # outgoing webhooks claimed, and their outcomes written, together


@dataclass(frozen=True, slots=True)
class _Webhook:
    """A claimed outgoing webhook, with what its POST needs."""

    claimed: Claimed
    url: str
    secret: str
    body: bytes
    event: str


@dataclass(slots=True)
class _Outcomes:
    """What happened to the webhooks of a batch, written together (`_record_webhooks`)."""

    sent: list[Claimed] = field(default_factory=list)
    # (claimed, error, retry_after, reason in Russian)
    retried: list[tuple[Claimed, str, float | None, str]] = field(default_factory=list)
    # (claimed, code, message in Russian, detail)
    failed: list[tuple[Claimed, str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.retried) + len(self.failed)


def deliver_webhooks(ctx: JobContext, jitter: Callable[[], float], limit: int) -> int:
    """Claim up to `limit` due outgoing webhooks, POST them, record what came of each;
    returns how many were handled."""
    webhooks, handled = _claim_webhooks(ctx, ctx.clock(), limit)
    if not webhooks:
        return handled
    outcomes = _Outcomes()
    refused: dict[str, Invalid | None] = {}  # per URL, checked once per batch
    for webhook in webhooks:
        if ctx.stopping.is_set():
            break  # the rest keep 'sending' until their lease ends, and go again
        try:
            _post_webhook(ctx, webhook, refused, outcomes)
        except Exception:
            # A bug: leave the item 'sending', its lease decides.
            log.exception("outbox item crashed", extra={"fields": {"item": webhook.claimed.id}})
        handled += 1
    _record_webhooks(ctx, outcomes, jitter)
    return handled


def _claim_webhooks(ctx: JobContext, now: datetime, limit: int) -> tuple[list[_Webhook], int]:
    """In one transaction: claim up to `limit` due webhooks ('sending', with a lease) and
    read their subscriptions. Those that cannot be sent (subscription gone or paused,
    or crashed on every attempt) are settled there. Returns the ones to POST and how
    many were settled."""
    with ctx.transaction() as session:
        items = session.exec(due(now, OutboxKind.webhook).limit(limit)).all()
        if not items:
            return [], 0
        ids = {item.subscription_id for item in items if item.subscription_id is not None}
        subscriptions = {
            s.id: s
            for s in session.exec(
                select(WebhookSubscription).where(col(WebhookSubscription.id).in_(ids))
            )
        }
        secrets: dict[int, str] = {}
        webhooks: list[_Webhook] = []
        settled = 0
        sending: list[int] = []
        for item in items:
            assert item.id is not None
            claimed = Claimed(
                id=item.id,
                kind=item.kind,
                attempts=item.attempts + 1,
                stuck=item.status == OutboxStatus.sending,
            )
            subscription = subscriptions.get(item.subscription_id or 0)
            if claimed.stuck and claimed.attempts > WEBHOOK_MAX_ATTEMPTS:
                item.attempts = claimed.attempts
                code, message = WEBHOOK_GAVE_UP
                item.status = OutboxStatus.failed
                item.error_code, item.error_message = code, message
                item.last_error = "crashed on every attempt"
                item.next_attempt_at = None
                log.warning("outbox item failed", extra={"fields": {"item": item.id, "code": code}})
                settled += 1
            elif subscription is None or subscription.id is None or not subscription.is_active:
                item.attempts = claimed.attempts
                item.status = OutboxStatus.cancelled
                item.next_attempt_at = None
                settled += 1
            else:
                sending.append(item.id)
                if subscription.id not in secrets:
                    secrets[subscription.id] = ctx.cipher.decrypt(subscription.secret_enc) or ""
                webhooks.append(
                    _Webhook(
                        claimed=claimed,
                        url=subscription.url,
                        secret=secrets[subscription.id],
                        body=json.dumps(
                            item.payload, ensure_ascii=False, separators=(",", ":")
                        ).encode(),
                        event=str(item.payload.get("event", "")),
                    )
                )
        if sending:
            # The usual claim, one statement for the batch (the rare others above are
            # written by the session's flush). While 'sending', next_attempt_at is the
            # end of the lease.
            session.connection().execute(
                _ITEMS.update()
                .where(bulk.among(session, _ITEMS.c.id, sending))
                .values(
                    status=OutboxStatus.sending,
                    attempts=_ITEMS.c.attempts + 1,
                    next_attempt_at=now + SENDING_LEASE,
                )
            )
        return webhooks, settled


def _post_webhook(
    ctx: JobContext, webhook: _Webhook, refused: dict[str, Invalid | None], outcomes: _Outcomes
) -> None:
    claimed, url = webhook.claimed, webhook.url
    if url not in refused:
        try:  # checked again at each delivery: a name can come to resolve inside
            check_target(url, allow_private=ctx.settings.outgoing_webhooks_allow_private)
            refused[url] = None
        except Invalid as exc:
            refused[url] = exc
    refusal = refused[url]
    if refusal is not None:
        outcomes.failed.append((claimed, refusal.code, refusal.message, f"refused target {url}"))
        return
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Otklik-Signature": sign(webhook.secret, webhook.body),
        "X-Otklik-Event": webhook.event,
        # Receivers deduplicate by this: a retry after a lost answer repeats it.
        "X-Otklik-Delivery": str(claimed.id),
    }
    try:
        response = ctx.http.post(url, content=webhook.body, headers=headers)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
        outcomes.retried.append((claimed, error, None, "Адрес подписки недоступен."))
        return
    if 200 <= response.status_code < 300:
        outcomes.sent.append(claimed)
        return
    retry_after: float | None = None
    header = response.headers.get("retry-after", "")
    if header.replace(".", "", 1).isdigit():
        retry_after = float(header)
    status = response.status_code
    reason = f"Адрес подписки ответил ошибкой (HTTP {status})."
    outcomes.retried.append((claimed, f"HTTP {status}", retry_after, reason))


_ITEMS: sa.Table = OutboxItem.__table__  # type: ignore[attr-defined]
# An outcome is written only if the item is still this sender's claim ('sending' from
# this claim, not re-claimed since its lease ran out), as `outcomes.current` checks.
_STILL_OURS = {"status": OutboxStatus.sending}
_CLAIM = ("attempts",)  # the rows' attempts: those of the claim, compared, not set


def _record_webhooks(ctx: JobContext, outcomes: _Outcomes, jitter: Callable[[], float]) -> None:
    """The outcomes of a batch of webhooks, in one transaction (a statement per kind of
    outcome, each row written only if the item is still ours): as `retry` and `fail` of
    `outcomes` would write them one item at a time."""
    if not outcomes:
        return
    now = ctx.clock()
    failed = list(outcomes.failed)
    retried: list[dict[str, Any]] = []
    for claimed, error, retry_after, reason_ru in outcomes.retried:
        if claimed.attempts >= WEBHOOK_MAX_ATTEMPTS:
            code, message = WEBHOOK_GAVE_UP
            failed.append((claimed, code, message, error))
            continue
        delay = backoff(claimed.attempts, retry_after, jitter())
        retried.append(
            {
                "id": claimed.id,
                "status": OutboxStatus.pending,
                "last_error": error[:2000],
                "error_code": RETRYING,
                "error_message": f"{reason_ru} Попытка {claimed.attempts} из "
                f"{WEBHOOK_MAX_ATTEMPTS} не удалась; Отклик повторит отправку сам.",
                "next_attempt_at": now + timedelta(seconds=delay),
                "attempts": claimed.attempts,
            }
        )
        log.warning("outbox retry", extra={"fields": {"item": claimed.id, "error": error}})
    with ctx.transaction() as session:
        db = session.connection()
        if outcomes.sent:
            # Delivered, the usual outcome: one statement for the batch's (id, claimed
            # attempts), a text whatever their number (`bulk.pairs_among`).
            claims = [(c.id, c.attempts) for c in outcomes.sent]
            db.execute(
                _ITEMS.update()
                .where(
                    bulk.pairs_among(session, _ITEMS.c.id, _ITEMS.c.attempts, claims),
                    _ITEMS.c.status == OutboxStatus.sending,
                )
                .values(
                    status=OutboxStatus.sent,
                    sent_at=now,
                    next_attempt_at=None,
                    error_code=None,
                    error_message=None,
                )
            )
        # One statement for all the batch's retries (a subscriber that is down fails
        # every item), and one for its failures.
        bulk.update_many(db, _ITEMS, retried, only_if=_STILL_OURS, compare=_CLAIM)
        failures = [
            {
                "id": c.id,
                "status": OutboxStatus.failed,
                "error_code": code[:64],
                "error_message": message,
                "last_error": detail[:2000],
                "next_attempt_at": None,
                "attempts": c.attempts,
            }
            for c, code, message, detail in failed
        ]
        bulk.update_many(db, _ITEMS, failures, only_if=_STILL_OURS, compare=_CLAIM)
    for claimed, code, _, _ in failed:
        log.warning("outbox item failed", extra={"fields": {"item": claimed.id, "code": code}})
