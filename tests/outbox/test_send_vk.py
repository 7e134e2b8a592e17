"""Replies published on VK: the right calls, a retry without a double post (the same guid),
flood control, permanent errors shown to the operator, an item whose sender crashed."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import Session, select

from app.auth.models import User
from app.core.config import Settings
from app.directory.models import Platform
from app.outbox.outcomes import SENDING_LEASE
from app.questions.models import Direction, Message, OutboxItem, OutboxStatus, QuestionStatus
from app.sla import service as sla_service
from app.sla.models import ClockState, Target
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import (
    VK_GROUP,
    FakePlatform,
    items_of,
    question_on,
    reply,
    run,
    timeline_of,
    vk_error,
    vk_ok,
    vk_wall,
)
from webhooks.vk_api import guid, random_id


def test_vk_wall_reply_is_a_create_comment_as_the_community(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    item = reply(session, question, operator, clock)
    fake = FakePlatform([vk_ok({"comment_id": 9195, "parents_stack": [9187]})])

    assert run(connection, settings, clock, fake) == 1

    (call,) = fake.calls
    assert call.path == "/method/wall.createComment"
    assert call.headers["authorization"] == "Bearer vk1.a.test-token"
    assert call.form == {
        "owner_id": f"-{VK_GROUP}",
        "post_id": "1542",
        "from_group": VK_GROUP,
        "reply_to_comment": "9187",
        "message": "Ирина, здравствуйте! Ремонт в плане на май.",
        "guid": guid(item.id or 0),
        "v": "5.199",
    }
    session.expire_all()
    sent = session.get(OutboxItem, item.id)
    assert sent is not None and sent.status == OutboxStatus.sent
    assert sent.external_id == "9195" and sent.attempts == 1
    message = session.get(Message, item.message_id)
    assert message is not None
    assert message.external_id == f"wall:-{VK_GROUP}_1542:9195"  # what the echo will carry
    assert message.sent_at == clock()
    assert message.permalink == f"https://vk.com/wall-{VK_GROUP}_1542?reply=9195&thread=9187"
    session.refresh(question)
    assert question.status == QuestionStatus.answered
    assert question.first_response_at == clock()
    first = sla_service.clocks_of(session, question)[Target.first_response]
    assert first.state == ClockState.met and first.done_at == clock()
    (response,) = timeline_of(session, question, "response")
    assert response.data["external_id"] == "9195" and response.actor_id == operator.id
    # Nothing left to do.
    assert run(connection, settings, clock, fake) == 0


def test_vk_private_message_uses_a_random_id_fixed_per_item(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = question_on(
        session,
        Platform.vk,
        {"method": "messages", "peer_id": "384756120", "conversation_message_id": "312"},
        external_id="msg:384756120:312",
        thread_key="msg:384756120",
        page_external_id=VK_GROUP,
    )
    item = reply(session, question, operator, clock)
    fake = FakePlatform(
        [vk_ok([{"peer_id": 384756120, "message_id": 4480, "conversation_message_id": 313}])]
    )
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    assert call.path == "/method/messages.send"
    assert call.form["peer_ids"] == "384756120"
    assert call.form["random_id"] == str(random_id(item.id or 0))
    assert json.loads(call.form["forward"]) == {
        "peer_id": 384756120,
        "conversation_message_ids": [312],
        "is_reply": True,
    }
    session.expire_all()
    message = session.get(Message, item.message_id)
    assert message is not None and message.external_id == "msg:384756120:313"


def test_a_timeout_then_a_retry_posts_once_with_the_same_guid(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    item = reply(session, question, operator, clock)
    posted: set[str] = set()

    def vk(request: httpx.Request) -> httpx.Response:
        # The comment is posted, but the answer is lost on the way back.
        posted.add(dict(httpx.QueryParams(request.content.decode()))["guid"])
        raise httpx.ReadTimeout("timed out", request=request)

    fake = FakePlatform([vk])
    run(connection, settings, clock, fake)
    (waiting,) = items_of(session, question)
    assert waiting.status == OutboxStatus.pending and waiting.attempts == 1
    assert waiting.next_attempt_at == clock() + timedelta(seconds=10)
    assert "ReadTimeout" in (waiting.last_error or "")
    # Not due yet: nothing happens.
    assert run(connection, settings, clock, fake) == 0

    clock.advance(seconds=10)
    # VK recognises the guid and answers with the comment it already has.
    fake.answers[:] = [vk_ok({"comment_id": 9195})]
    run(connection, settings, clock, fake)
    guids = {call.form["guid"] for call in fake.calls}
    assert guids == posted == {guid(item.id or 0)}
    (sent,) = items_of(session, question)
    assert sent.status == OutboxStatus.sent and sent.attempts == 2
    responses = session.exec(
        select(Message).where(
            Message.question_id == question.id, Message.direction == Direction.outbound
        )
    ).all()
    assert len(responses) == 1


def test_vk_flood_control_waits_and_backs_off(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([vk_error(9, "Flood control")])
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.pending
    assert item.next_attempt_at == clock() + timedelta(seconds=60)


def test_a_permanent_error_reaches_the_operator_and_the_sla_keeps_running(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    item = reply(session, question, operator, clock)
    fake = FakePlatform([vk_error(212, "Access to post comments denied")])
    run(connection, settings, clock, fake)

    (failed,) = items_of(session, question)
    assert failed.status == OutboxStatus.failed and len(fake.calls) == 1
    assert failed.error_code == "comments_closed"
    assert (
        failed.error_message is not None
        and "Комментарии к этой записи закрыты" in failed.error_message
    )
    message = session.get(Message, item.message_id)
    assert message is not None and message.sent_at is None and message.external_id is None
    session.refresh(question)
    assert question.first_response_at is None
    assert question.status == QuestionStatus.in_progress
    first = sla_service.clocks_of(session, question)[Target.first_response]
    assert first.state == ClockState.running and first.done_at is None
    (entry,) = timeline_of(session, question, "reply_failed")
    assert entry.data["error_code"] == "comments_closed"
    assert entry.data["message"] == failed.error_message
    # Stopped at once: no further attempts.
    clock.advance(hours=5)
    assert run(connection, settings, clock, fake) == 0


def test_gives_up_after_the_last_attempt(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([httpx.Response(502, text="Bad Gateway")])
    for _ in range(30):
        run(connection, settings, clock, fake)
        clock.advance(hours=1)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.failed and item.error_code == "gave_up"
    assert item.attempts == len(fake.calls) == 12


def test_a_crashed_sender_leaves_vk_items_to_be_retried_safely(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    item = reply(session, question, operator, clock)
    # Another worker claimed it and died before recording anything.
    item.status, item.attempts = OutboxStatus.sending, 1
    item.next_attempt_at = clock() + SENDING_LEASE
    session.add(item)
    session.commit()
    fake = FakePlatform([vk_ok({"comment_id": 9195})])
    assert run(connection, settings, clock, fake) == 0  # the lease still holds
    clock.advance(seconds=SENDING_LEASE.total_seconds())
    assert run(connection, settings, clock, fake) == 1
    (call,) = fake.calls
    assert call.form["guid"] == guid(item.id or 0)
    assert items_of(session, question)[0].status == OutboxStatus.sent
