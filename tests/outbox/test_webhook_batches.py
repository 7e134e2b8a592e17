"""Outgoing webhooks go in batches: claimed together, POSTed, their outcomes written
together; each item's outcome is the one it would have had alone."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.outbox.outcomes import WEBHOOK_MAX_ATTEMPTS
from app.questions import outgoing
from app.questions.models import (
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Question,
    WebhookSubscription,
)
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import CIPHER, FakePlatform, run, vk_wall


def _subscribe(session: Session, url: str = "https://sed.example.ru/hook") -> WebhookSubscription:
    subscription = WebhookSubscription(
        url=url, secret_enc=CIPHER.encrypt("s3cret-for-signing-0123"), events=["sla.breached"]
    )
    session.add(subscription)
    session.flush()
    return subscription


def _events(session: Session, question: Question, clock: FrozenClock, count: int) -> list[int]:
    for _ in range(count):
        outgoing.emit(session, "sla.breached", question, clock())
    session.commit()
    items = session.exec(
        select(OutboxItem)
        .where(col(OutboxItem.kind) == OutboxKind.webhook)
        .order_by(col(OutboxItem.id))
    ).all()
    return [i.id for i in items if i.id is not None]


def _items(session: Session, ids: list[int]) -> list[OutboxItem]:
    found = {i.id: i for i in session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(ids)))}
    for item in found.values():
        session.refresh(item)
    return [found[i] for i in ids]


def test_each_webhook_of_a_batch_gets_its_own_outcome(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    _subscribe(session)
    ids = _events(session, vk_wall(session, clock), clock, 5)
    fake = FakePlatform(
        [
            httpx.Response(204),
            httpx.Response(503, headers={"Retry-After": "30"}),
            httpx.ConnectError("refused"),
            httpx.Response(500),
            httpx.Response(204),
        ]
    )
    assert run(connection, settings, clock, fake) == 5
    assert [c.headers["x-otklik-delivery"] for c in fake.calls] == [str(i) for i in ids]
    sent, later, unreachable, error, last = _items(session, ids)
    assert sent.status == last.status == OutboxStatus.sent and sent.sent_at == clock()
    assert later.status == OutboxStatus.pending and later.error_code == "retrying"
    assert later.next_attempt_at == clock() + timedelta(seconds=30)
    assert later.last_error == "HTTP 503"
    assert unreachable.status == OutboxStatus.pending
    assert unreachable.last_error is not None and "ConnectError" in unreachable.last_error
    assert unreachable.error_message is not None
    assert unreachable.error_message.startswith("Адрес подписки недоступен. Попытка 1 из")
    assert error.status == OutboxStatus.pending and error.next_attempt_at is not None
    assert error.next_attempt_at > clock()
    assert all(i.attempts == 1 for i in (sent, later, unreachable, error, last))
    # Nothing is due yet: nothing is sent again.
    assert run(connection, settings, clock, fake) == 0
    assert len(fake.calls) == 5


def test_a_batch_costs_the_same_statements_whatever_its_size(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    _subscribe(session)
    question = vk_wall(session, clock)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    costs = []
    for size in (2, 12):
        ids = _events(session, question, clock, size)
        fake = FakePlatform([httpx.Response(204)])
        statements = 0
        sa.event.listen(connection, "before_cursor_execute", count)
        try:
            run(connection, settings, clock, fake)
        finally:
            sa.event.remove(connection, "before_cursor_execute", count)
        costs.append(statements)
        assert {i.status for i in _items(session, ids)} == {OutboxStatus.sent}
    assert costs[0] == costs[1], costs


def test_stuck_paused_and_refused_webhooks_in_one_batch(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    _subscribe(session)
    paused = _subscribe(session, "https://archive.example.ru/hook")
    private = _subscribe(session, "http://127.0.0.1:9/hook")
    question = vk_wall(session, clock)
    ids = _events(session, question, clock, 1)  # one per subscription
    assert len(ids) == 3
    fine, of_paused, of_private = _items(session, ids)
    assert of_paused.subscription_id == paused.id and of_private.subscription_id == private.id
    # The first crashed mid-send on its last attempt; its lease has run out.
    fine.status, fine.attempts = OutboxStatus.sending, WEBHOOK_MAX_ATTEMPTS
    fine.next_attempt_at = clock() - timedelta(seconds=1)
    paused.is_active = False
    session.add_all([fine, paused])
    session.commit()
    fake = FakePlatform([httpx.Response(204)])
    assert run(connection, settings, clock, fake) == 3
    assert fake.calls == []
    fine, of_paused, of_private = _items(session, ids)
    assert fine.status == OutboxStatus.failed and fine.error_code == "gave_up"
    assert of_paused.status == OutboxStatus.cancelled
    assert of_private.status == OutboxStatus.failed
    assert of_private.error_code == "subscription_url_private"


@pytest.mark.parametrize("answer", [204, 503], ids=["sent", "retried"])
def test_an_outcome_is_not_written_over_another_senders_claim(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    answer: int,
) -> None:
    _subscribe(session)
    (item_id,) = _events(session, vk_wall(session, clock), clock, 1)

    def reclaimed(request: httpx.Request) -> httpx.Response:
        # While this sender waits for the answer, its lease ran out and another sender
        # claimed the item again.
        connection.execute(
            sa.update(OutboxItem)
            .where(col(OutboxItem.id) == item_id)
            .values(attempts=OutboxItem.attempts + 1)
        )
        return httpx.Response(answer)

    run(connection, settings, clock, FakePlatform([reclaimed]))
    (item,) = _items(session, [item_id])
    assert item.status == OutboxStatus.sending and item.attempts == 2 and item.sent_at is None
    assert item.error_code is None
