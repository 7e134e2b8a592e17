"""What a published reply changes: interim answers keep the question in progress; the
platform's echo of our reply is folded into it, never counted as a second response."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from app.auth.models import User
from app.core.config import Settings
from app.questions.models import Direction, Message, MessageSource, QuestionStatus
from app.sla import service as sla_service
from app.sla.models import ClockState, Target
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import (
    CIPHER,
    VK_GROUP,
    FakePlatform,
    reply,
    run,
    timeline_of,
    vk_ok,
    vk_wall,
)


def test_an_interim_answer_keeps_the_question_in_progress(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    expected = clock() + timedelta(days=3)
    reply(session, question, operator, clock, interim=True, expected_at=expected)
    run(connection, settings, clock, FakePlatform([vk_ok({"comment_id": 9195})]))
    session.refresh(question)
    assert question.status == QuestionStatus.in_progress
    assert question.first_response_at == clock()
    assert question.interim_expected_at == expected
    clocks = sla_service.clocks_of(session, question)
    assert clocks[Target.first_response].state == ClockState.met
    assert clocks[Target.final_answer].done_at is None


def test_an_echo_stored_first_as_native_is_folded_into_our_reply(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    item = reply(session, question, operator, clock)
    echo = Message(
        question_id=question.id or 0,
        page_id=question.page_id,
        direction=Direction.outbound,
        source=MessageSource.native,
        text="Ирина, здравствуйте!  Ремонт в плане на май.",
        sent_at=clock(),
        external_id=f"wall:-{VK_GROUP}_1542:9195",
    )
    session.add(echo)
    session.commit()
    run(connection, settings, clock, FakePlatform([vk_ok({"comment_id": 9195})]))
    session.expire_all()
    outbound = session.exec(
        select(Message).where(
            Message.question_id == question.id, Message.direction == Direction.outbound
        )
    ).all()
    assert [m.id for m in outbound] == [item.message_id]
    assert outbound[0].external_id == f"wall:-{VK_GROUP}_1542:9195"


def test_the_echo_of_a_published_reply_is_matched_not_counted_again(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    from app.intake.models import InboundEvent
    from app.processing import ingest as inbox_service

    question = vk_wall(session, clock)
    reply(session, question, operator, clock)
    run(connection, settings, clock, FakePlatform([vk_ok({"comment_id": 9195})]))
    body = {
        "type": "wall_reply_new",
        "event_id": "0c4e8a2f9b1d3e5a7c9f0b2d4e6a8c1f3b5d7e9a",
        "v": "5.199",
        "group_id": int(VK_GROUP),
        "secret": "Zr7qL2vN9xKw",
        "object": {
            "id": 9195,
            "from_id": -int(VK_GROUP),
            "date": int(clock().timestamp()),
            "text": "Ирина, здравствуйте! Ремонт в плане на май.",
            "post_id": 1542,
            "owner_id": -int(VK_GROUP),
            "reply_to_comment": 9187,
            "parents_stack": [9187],
        },
    }
    event = InboundEvent(
        platform="vk",
        page_id=question.page_id,
        delivery_key=body["event_id"],  # type: ignore[arg-type]
        body=json.dumps(body).encode(),
        received_at=clock(),
    )
    session.add(event)
    session.flush()
    inbox_service.process(session, event, cipher=CIPHER, now=clock())
    session.flush()
    outbound = session.exec(
        select(Message).where(
            Message.question_id == question.id, Message.direction == Direction.outbound
        )
    ).all()
    assert len(outbound) == 1 and outbound[0].source == MessageSource.otklik
    assert len(timeline_of(session, question, "response")) == 1
