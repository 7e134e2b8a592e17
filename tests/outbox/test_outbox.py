"""The outbox sender against fake platform servers: the right calls, retries without
double posts, waits the platform asks for, permanent errors shown to the operator."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as replies
from app.auth.models import Role, User
from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory.models import Platform
from app.outbox.models import SendRate
from app.outbox.outcomes import backoff
from app.outbox.sender import SENDING_LEASE, send_outbox
from app.questions import outgoing
from app.questions.models import (
    Direction,
    Message,
    MessageSource,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Question,
    QuestionStatus,
    TimelineEntry,
    WebhookSubscription,
)
from app.sla import service as sla_service
from app.sla.models import ClockState, Target
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import make_user
from tests.outbox.outbox_helpers import (
    VK_GROUP,
    FakePlatform,
    items_of,
    question_on,
    run,
    vk_error,
    vk_ok,
)
from webhooks.generic import sign
from webhooks.vk_api import guid, random_id

CIPHER = Cipher(SECRET)


@pytest.fixture
def operator(session: Session) -> User:
    return make_user(session, Role.admin, name="Оператор Анна")


def _vk_wall(session: Session, clock: FrozenClock) -> Question:
    question = question_on(
        session,
        Platform.vk,
        {"method": "wall", "owner_id": f"-{VK_GROUP}", "post_id": "1542", "comment_id": "9187"},
        external_id=f"wall:-{VK_GROUP}_1542:9187",
        thread_key=f"wall:-{VK_GROUP}_1542",
        page_external_id=VK_GROUP,
        created_at=clock() - timedelta(hours=1),
    )
    sla_service.start_clocks(session, question, now=clock() - timedelta(hours=1))
    return question


def _reply(
    session: Session, question: Question, user: User, clock: FrozenClock, **kw: object
) -> OutboxItem:
    args: dict[str, object] = {
        "text": "Ирина, здравствуйте! Ремонт в плане на май.",
        "interim": False,
    }
    args.update(kw)
    item = replies.reply(
        session,
        question,
        text=str(args["text"]),
        interim=bool(args["interim"]),
        expected_at=args.get("expected_at"),  # type: ignore[arg-type]
        by=user,
        now=clock(),
        cipher=CIPHER,
    )
    session.commit()
    return item


def _timeline(session: Session, question: Question, kind: str) -> list[TimelineEntry]:
    return list(
        session.exec(
            select(TimelineEntry).where(
                TimelineEntry.question_id == question.id, TimelineEntry.kind == kind
            )
        ).all()
    )


# --- VK ---------------------------------------------------------------------------------------


def test_vk_wall_reply_is_a_create_comment_as_the_community(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _vk_wall(session, clock)
    item = _reply(session, question, operator, clock)
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
    (response,) = _timeline(session, question, "response")
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
    item = _reply(session, question, operator, clock)
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
    question = _vk_wall(session, clock)
    item = _reply(session, question, operator, clock)
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
    question = _vk_wall(session, clock)
    _reply(session, question, operator, clock)
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
    question = _vk_wall(session, clock)
    item = _reply(session, question, operator, clock)
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
    (entry,) = _timeline(session, question, "reply_failed")
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
    question = _vk_wall(session, clock)
    _reply(session, question, operator, clock)
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
    question = _vk_wall(session, clock)
    item = _reply(session, question, operator, clock)
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


# --- Telegram ---------------------------------------------------------------------------------


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
    item = _reply(session, question, operator, clock)
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
    _reply(session, question, operator, clock)
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
    _reply(session, question, operator, clock)
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
    _reply(session, question, operator, clock)
    fake = FakePlatform([httpx.ReadTimeout("timed out")])
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.failed and item.error_code == "outcome_unknown"
    assert len(fake.calls) == 1
    # A refused connection is safe to retry: nothing reached Telegram.
    question2 = _telegram(session, chat="690112233")
    _reply(session, question2, operator, clock)
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
        _reply(session, question, operator, clock)
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
    _reply(session, question, operator, clock)
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
    item = _reply(session, question, operator, clock)
    item.status, item.attempts, item.next_attempt_at = OutboxStatus.sending, 1, clock()
    session.add(item)
    session.commit()
    fake = FakePlatform([_tg_sent(20590)])
    run(connection, settings, clock, fake)
    assert fake.calls == []
    (stopped,) = items_of(session, question)
    assert stopped.status == OutboxStatus.failed and stopped.error_code == "outcome_unknown"


# --- OK and MAX -------------------------------------------------------------------------------


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
    item = _reply(session, question, operator, clock)
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
    item = _reply(session, question, operator, clock)
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
    _reply(session, question, operator, clock)
    fake = FakePlatform([_max_sent("mid.out.2")])
    run(connection, settings, clock, fake)
    (call,) = fake.calls
    assert call.path == "/messages/mid.post.77/comments"


# --- interim answers and the echo -------------------------------------------------------------


def test_an_interim_answer_keeps_the_question_in_progress(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = _vk_wall(session, clock)
    expected = clock() + timedelta(days=3)
    _reply(session, question, operator, clock, interim=True, expected_at=expected)
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
    question = _vk_wall(session, clock)
    item = _reply(session, question, operator, clock)
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

    question = _vk_wall(session, clock)
    _reply(session, question, operator, clock)
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
    assert len(_timeline(session, question, "response")) == 1


# --- outgoing webhooks ------------------------------------------------------------------------


def test_outgoing_webhooks_are_signed_and_retried(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    subscription = WebhookSubscription(
        url="https://sed.example.ru/hook",
        secret_enc=CIPHER.encrypt("s3cret-for-signing-0123"),
        events=["question.answered"],
    )
    session.add(subscription)
    question = _vk_wall(session, clock)
    assert outgoing.emit(session, "question.answered", question, clock()) == 1
    session.commit()
    fake = FakePlatform([httpx.Response(503, headers={"Retry-After": "30"}), httpx.Response(204)])
    run(connection, settings, clock, fake)
    (item,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.webhook)).all()
    session.refresh(item)
    assert item.status == OutboxStatus.pending
    assert item.next_attempt_at == clock() + timedelta(seconds=30)
    clock.advance(seconds=30)
    run(connection, settings, clock, fake)
    session.refresh(item)
    assert item.status == OutboxStatus.sent
    first, second = fake.calls
    assert first.path == "/hook" and first.method == "POST"
    assert second.json == item.payload and second.json["event"] == "question.answered"
    raw = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert second.headers["x-otklik-signature"] == sign("s3cret-for-signing-0123", raw)
    assert second.headers["x-otklik-delivery"] == first.headers["x-otklik-delivery"] == str(item.id)


def test_deliveries_of_a_paused_subscription_are_cancelled(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    subscription = WebhookSubscription(
        url="https://sed.example.ru/hook",
        secret_enc=CIPHER.encrypt("x" * 20),
        events=["sla.breached"],
    )
    session.add(subscription)
    question = _vk_wall(session, clock)
    outgoing.emit(session, "sla.breached", question, clock())
    subscription.is_active = False
    session.add(subscription)
    session.commit()
    fake = FakePlatform([httpx.Response(204)])
    run(connection, settings, clock, fake)
    assert fake.calls == []
    statuses = session.exec(
        select(OutboxItem.status).where(col(OutboxItem.kind) == OutboxKind.webhook)
    ).all()
    assert statuses == [OutboxStatus.cancelled]


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    assert backoff(1, None, 0.0) == 10.0
    assert backoff(3, None, 0.0) == 40.0
    assert backoff(3, None, 0.999) == pytest.approx(60.0, abs=0.1)
    assert backoff(30, None, 0.0) == 3600.0
    assert backoff(1, 17.0, 0.0) == 17.0
    assert 17.0 <= backoff(1, 17.0, 0.999) <= 19.3


def test_the_worker_sweep_runs_the_outbox_on_committed_data(
    live_engine: sa.Engine, db: Session, settings: Settings, clock: FrozenClock
) -> None:
    """The registered job with its real sessions (no test transaction in between)."""
    from app.jobs.runner import JobContext, jobs, run_once

    assert ("outbox", send_outbox) in jobs()
    question = _vk_wall(db, clock)
    _reply(db, question, make_user(db, Role.admin, password=None), clock)
    fake = FakePlatform([vk_ok({"comment_id": 9195})])
    ctx = JobContext(
        engine=live_engine,
        settings=settings,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(fake)),
        cipher=CIPHER,
    )
    assert run_once(ctx)["outbox"] == 1
    assert [call.path for call in fake.calls] == ["/method/wall.createComment"]
    db.expire_all()
    assert items_of(db, question)[0].status == OutboxStatus.sent
