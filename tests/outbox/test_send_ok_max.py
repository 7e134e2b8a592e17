"""Replies published on OK and MAX: group chats, dialogs, channel comments, 429."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from app.auth.models import User
from app.core.config import Settings
from app.directory.models import Platform
from app.questions.models import Message, OutboxStatus
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import FakePlatform, items_of, question_on, reply, run


def test_ok_reply_posts_to_the_group_chat(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = question_on(
        session,
        Platform.ok,
        {"chat_id": "chat:C3f7a9b1e2d40", "mid": "mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f"},
        external_id="ok:mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f",
        thread_key="ok:chat:C3f7a9b1e2d40",
        access_token="ok-group-token",
    )
    item = reply(session, question, operator, clock)
    fake = FakePlatform([httpx.Response(200, json={"success": True, "message_id": "mid:out1"})])
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    assert call.path == "/graph/me/messages/chat:C3f7a9b1e2d40"
    assert call.query == {"access_token": "ok-group-token"}
    assert call.json == {
        "recipient": {"chat_id": "chat:C3f7a9b1e2d40"},
        "message": {"text": "Ирина, здравствуйте! Ремонт в плане на май."},
    }
    session.expire_all()
    message = session.get(Message, item.message_id)
    assert message is not None and message.external_id == "ok:mid:out1"


def _max_sent(mid: str) -> httpx.Response:
    return httpx.Response(
        200, json={"message": {"body": {"mid": mid, "text": "ok"}, "timestamp": 1773126000123}}
    )


def test_max_dialog_reply_and_429(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = question_on(
        session,
        Platform.max,
        {"user_id": "40718293", "mid": "mid.00000000729ab3c1"},
        external_id="max:mid.00000000729ab3c1",
        thread_key="max:7718293401",
        access_token="max-bot-token",
    )
    item = reply(session, question, operator, clock)
    fake = FakePlatform(
        [
            httpx.Response(429, json={"code": "too.many.requests", "message": "slow down"}),
            _max_sent("mid.out.1"),
        ]
    )
    run(connection, settings, clock, fake)
    (waiting,) = items_of(session, question)
    assert waiting.status == OutboxStatus.pending
    clock.advance(hours=1)
    run(connection, settings, clock, fake)
    first, second = fake.calls
    assert first.path == second.path == "/messages"
    assert second.query == {"user_id": "40718293"}
    assert second.headers["authorization"] == "max-bot-token"
    assert second.json["text"] == "Ирина, здравствуйте! Ремонт в плане на май."
    assert second.json["link"] == {"type": "reply", "mid": "mid.00000000729ab3c1"}
    session.expire_all()
    message = session.get(Message, item.message_id)
    assert message is not None and message.external_id == "max:mid.out.1"


def test_max_channel_comment_reply(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = question_on(
        session,
        Platform.max,
        {"post_id": "mid.post.77", "comment_id": "c1"},
        external_id="max:comment:c1",
        thread_key="max:post:mid.post.77",
        access_token="max-bot-token",
    )
    reply(session, question, operator, clock)
    fake = FakePlatform([_max_sent("mid.out.2")])
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    assert call.path == "/messages/mid.post.77/comments"
