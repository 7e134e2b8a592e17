"""Replies published on Telegram: threads, waits the platform asks for (429), permanent
errors, an outcome unknown never sent twice, replies into one chat spaced out."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.auth.models import User
from app.core.config import Settings
from app.directory.models import Platform
from app.outbox.models import SendRate
from app.questions.models import Message, OutboxStatus, Question
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import FakePlatform, items_of, question_on, reply, run


def _telegram(session: Session, chat: str = "-1001876543210") -> Question:
    ref = {"chat_id": chat, "message_id": "20578"}
    if chat.startswith("-"):
        ref["message_thread_id"] = "20577"
    return question_on(
        session,
        Platform.telegram,
        ref,
        external_id=f"tg:{chat}:20578",
        thread_key=f"tg:{chat}:20577",
    )


def _tg_sent(
    message_id: int, chat: str = "-1001876543210", date: int = 1773126000
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": date,
                "chat": {"id": int(chat), "type": "supergroup", "username": "zarechny_chat"},
            },
        },
    )


def test_telegram_reply_answers_the_comment_in_its_thread(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session)
    item = reply(session, question, operator, clock)
    fake = FakePlatform([_tg_sent(20590)])
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    token = call.path.split("/")[1].removeprefix("bot")
    assert call.path == f"/bot{token}/sendMessage" and token.endswith(":AAtesttoken")
    assert call.json == {
        "chat_id": -1001876543210,
        "text": "Ирина, здравствуйте! Ремонт в плане на май.",
        "reply_parameters": {"message_id": 20578, "allow_sending_without_reply": False},
        "message_thread_id": 20577,
    }
    session.expire_all()
    message = session.get(Message, item.message_id)
    assert message is not None and message.external_id == "tg:-1001876543210:20590"
    # The platform's own time of acceptance, not ours.
    assert message.sent_at is not None and int(message.sent_at.timestamp()) == 1773126000


def test_telegram_429_waits_for_retry_after(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session)
    reply(session, question, operator, clock)
    too_many = httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 17",
            "parameters": {"retry_after": 17},
        },
    )
    fake = FakePlatform([too_many])
    now = clock()
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.pending
    assert item.next_attempt_at == now + timedelta(seconds=17)
    # The whole chat waits, not just this item.
    rate = session.get(SendRate, f"tg:{question.page_id}:-1001876543210")
    assert rate is not None and rate.next_at >= now + timedelta(seconds=17)
    clock.advance(seconds=16)
    assert run(connection, settings, clock, fake) == 0
    clock.advance(seconds=1)
    fake.answers[:] = [_tg_sent(20590)]
    assert run(connection, settings, clock, fake) == 1
    assert items_of(session, question)[0].status == OutboxStatus.sent


def test_telegram_blocked_bot_is_permanent(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session, chat="690112233")
    reply(session, question, operator, clock)
    fake = FakePlatform(
        [
            httpx.Response(
                403,
                json={
                    "ok": False,
                    "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user",
                },
            )
        ]
    )
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.failed
    assert item.error_message and any("а" <= ch <= "я" for ch in item.error_message)


def test_telegram_outcome_unknown_is_not_retried(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    """Telegram has no idempotency key: a lost answer must not become a second post."""
    question = _telegram(session)
    reply(session, question, operator, clock)
    fake = FakePlatform([httpx.ReadTimeout("timed out")])
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.failed and item.error_code == "outcome_unknown"
    assert len(fake.calls) == 1
    # A refused connection is safe to retry: nothing reached Telegram.
    question2 = _telegram(session, chat="690112233")
    reply(session, question2, operator, clock)
    fake.answers[:] = [httpx.ConnectError("refused")]
    run(connection, settings, clock, fake)
    assert items_of(session, question2)[0].status == OutboxStatus.pending


def test_telegram_spaces_replies_into_one_chat(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session, chat="690112233")
    for _ in range(4):
        reply(session, question, operator, clock)
    fake = FakePlatform([_tg_sent(1, chat="690112233")])
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    start = clock()
    run(connection, settings, clock, fake, sleep=sleep)
    # One a second into a private chat: each send waits its turn, so all four go out.
    assert len(fake.calls) == 4
    assert slept == pytest.approx([1.0, 1.0, 1.0])
    assert clock() - start == timedelta(seconds=3)


def test_a_slot_far_ahead_defers_the_item_without_counting_an_attempt(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session)
    reply(session, question, operator, clock)
    key = f"tg:{question.page_id}:-1001876543210"
    session.add(SendRate(key=key, next_at=clock() + timedelta(seconds=30)))
    session.commit()
    fake = FakePlatform([_tg_sent(20590)])
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert fake.calls == []
    assert item.status == OutboxStatus.pending and item.attempts == 0
    assert item.next_attempt_at == clock() + timedelta(seconds=30)


def test_telegram_item_stuck_in_sending_is_stopped_not_resent(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _telegram(session)
    item = reply(session, question, operator, clock)
    item.status, item.attempts, item.next_attempt_at = OutboxStatus.sending, 1, clock()
    session.add(item)
    session.commit()
    fake = FakePlatform([_tg_sent(20590)])
    run(connection, settings, clock, fake)
    assert fake.calls == []
    (stopped,) = items_of(session, question)
    assert stopped.status == OutboxStatus.failed and stopped.error_code == "outcome_unknown"
