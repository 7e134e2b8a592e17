"""Platform API faults while publishing, on every platform: timeouts, connection resets,
5xx, 429 with and without a wait, malformed answers, a token revoked mid-way.

Never a double post, never a lost reply, and a clear state for the operator: a reply is
either published once, waiting for its next attempt with the reason in Russian, or
stopped with a Russian explanation of what to do, shown on the question page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role, User
from app.core.config import Settings
from app.directory.models import Platform
from app.questions.models import OutboxItem, OutboxStatus, Question, QuestionStatus
from tests.answering.web import sign_in
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.factories.questions import make_question
from tests.outbox.outbox_helpers import (
    FakePlatform,
    citizen_message,
    items_of,
    question_on,
    reply,
    run,
    timeline_of,
    vk_error,
    vk_ok,
    vk_wall,
)


@pytest.fixture
def operator(session: Session) -> User:
    """An administrator without a password: hashing one costs more than a whole case."""
    user = User(login="fault-operator", name="Оператор Анна", role=Role.admin)
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[Session, FrozenClock], Question]
    sent: Callable[[int], httpx.Response]  # the platform's answer to a published reply
    idempotent: bool  # the send carries a key the platform deduplicates by (VK)
    limited: Callable[[float | None], httpx.Response]  # 429, with a wait or without
    revoked: httpx.Response  # the page's token no longer valid

    def __str__(self) -> str:
        return self.name


def _telegram(session: Session, clock: FrozenClock) -> Question:
    return question_on(
        session,
        Platform.telegram,
        {"chat_id": "-1001876543210", "message_id": "20578", "message_thread_id": "20577"},
        external_id="tg:-1001876543210:20578",
        thread_key="tg:-1001876543210:20577",
    )


def _tg_limited(wait: float | None) -> httpx.Response:
    parameters = {"retry_after": int(wait)} if wait else {}
    return httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests",
            "parameters": parameters,
        },
    )


def _ok(session: Session, clock: FrozenClock) -> Question:
    return question_on(
        session,
        Platform.ok,
        {"chat_id": "chat:C3f7a9b1e2d40", "mid": "mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f"},
        external_id="ok:mid:C3f7a9b1e2d40.18f2a3b4c5d6e7f",
        thread_key="ok:chat:C3f7a9b1e2d40",
        access_token="ok-group-token",
    )


def _max(session: Session, clock: FrozenClock) -> Question:
    return question_on(
        session,
        Platform.max,
        {"user_id": "40718293", "mid": "mid.00000000729ab3c1"},
        external_id="max:mid.00000000729ab3c1",
        thread_key="max:7718293401",
        access_token="max-bot-token",
    )


def _http_limited(wait: float | None) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": str(int(wait))} if wait else {})


TARGETS = [
    Target(
        "vk",
        vk_wall,
        lambda n: vk_ok({"comment_id": 9300 + n}),
        True,
        _http_limited,
        vk_error(5, "User authorization failed: invalid access_token (4)."),
    ),
    Target(
        "telegram",
        _telegram,
        lambda n: httpx.Response(
            200,
            json={
                "ok": True,
                "result": {
                    "message_id": 30_000 + n,
                    "date": 1773126000,
                    "chat": {"id": -1001876543210, "type": "supergroup"},
                },
            },
        ),
        False,
        _tg_limited,
        httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"}),
    ),
    Target(
        "ok",
        _ok,
        lambda n: httpx.Response(200, json={"success": True, "message_id": f"mid:out{n}"}),
        False,
        _http_limited,
        httpx.Response(200, json={"error_code": 102, "error_msg": "PARAM_SESSION_EXPIRED"}),
    ),
    Target(
        "max",
        _max,
        lambda n: httpx.Response(
            200, json={"message": {"body": {"mid": f"mid.out.{n}"}, "timestamp": 1773126000123}}
        ),
        False,
        _http_limited,
        httpx.Response(401, json={"code": "verify.token", "message": "Invalid access_token"}),
    ),
]


def _raise(exc: type[httpx.TransportError], text: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc(text, request=request)

    return answer


# Failures after which nothing can have been published: every platform tries again.
REFUSED = {
    "connect_refused": _raise(httpx.ConnectError, "[Errno 111] Connection refused"),
    "connect_timeout": _raise(httpx.ConnectTimeout, "timed out"),
    "http_502": httpx.Response(502, text="<html><h1>502 Bad Gateway</h1></html>"),
    "http_503": httpx.Response(503, text="Service Unavailable"),
}
# Failures after which the platform may have published: retried only where the send
# carries an idempotency key (VK); elsewhere stopped as "outcome unknown".
MAYBE_PUBLISHED = {
    "read_timeout": _raise(httpx.ReadTimeout, "timed out"),
    "connection_reset": _raise(httpx.ReadError, "[Errno 104] Connection reset by peer"),
    "dropped_answer": _raise(httpx.RemoteProtocolError, "Server disconnected"),
    "malformed_html_200": httpx.Response(200, text="<html>Просим прощения</html>"),
    "malformed_empty_200": httpx.Response(200, text=""),
}


def _published(session: Session, question: Question, item: OutboxItem) -> None:
    """Published once: sent, the question answered, one response on its timeline."""
    assert item.status == OutboxStatus.sent, (item.status, item.error_message)
    assert item.error_code is None
    session.refresh(question)
    assert question.status == QuestionStatus.answered
    assert len(timeline_of(session, question, "response")) == 1


def _stopped(session: Session, question: Question, item: OutboxItem, code: str) -> None:
    """Stopped, with the reason in Russian; the question still waits for an answer."""
    assert item.status == OutboxStatus.failed
    assert item.error_code == code, (item.error_code, item.error_message)
    assert item.error_message and any("а" <= ch <= "я" for ch in item.error_message.lower())
    session.refresh(question)
    assert question.status != QuestionStatus.answered
    assert len(timeline_of(session, question, "reply_failed")) == 1


@pytest.mark.parametrize("target", TARGETS, ids=str)
@pytest.mark.parametrize("fault", list(REFUSED), ids=str)
def test_a_refused_request_is_retried_and_published_once(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
    fault: str,
) -> None:
    question = target.make(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([REFUSED[fault], target.sent(1)])
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.pending and item.error_code == "retrying"
    assert item.error_message and "Отклик повторит отправку сам" in item.error_message
    clock.advance(minutes=5)
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    _published(session, question, item)
    assert len(fake.calls) == 2


@pytest.mark.parametrize("target", TARGETS, ids=str)
@pytest.mark.parametrize("fault", list(MAYBE_PUBLISHED), ids=str)
def test_a_request_that_may_have_been_published_is_never_posted_twice(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
    fault: str,
) -> None:
    question = target.make(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([MAYBE_PUBLISHED[fault], target.sent(1)])
    run(connection, settings, clock, fake)
    clock.advance(hours=1)
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    if target.idempotent:
        # Sent again under the same key: VK keeps one comment.
        _published(session, question, item)
        assert len(fake.calls) == 2
        assert fake.calls[0].form["guid"] == fake.calls[1].form["guid"]
    else:
        _stopped(session, question, item, "outcome_unknown")
        assert "Проверьте страницу" in (item.error_message or "")
        assert len(fake.calls) == 1


@pytest.mark.parametrize("target", TARGETS, ids=str)
@pytest.mark.parametrize("wait", [30.0, None], ids=["with_retry_after", "without_retry_after"])
def test_429_waits_as_asked_or_backs_off_then_publishes_once(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
    wait: float | None,
) -> None:
    question = target.make(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([target.limited(wait), target.sent(1)])
    started = clock()
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.pending
    assert item.error_message and "Попытка 1 из" in item.error_message
    assert item.next_attempt_at is not None
    # The platform's wait when it names one; else the first backoff step (10 s).
    assert item.next_attempt_at - started >= timedelta(seconds=wait or 10)
    run(connection, settings, clock, fake)  # too early: nothing is sent
    assert len(fake.calls) == 1
    clock.advance(minutes=2)
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    _published(session, question, item)
    assert len(fake.calls) == 2


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_a_token_revoked_mid_way_stops_the_rest_with_what_to_do(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
) -> None:
    first, second = _revoked_mid_way(session, connection, settings, clock, operator, target)
    (published,) = items_of(session, first)
    _published(session, first, published)
    (stopped,) = items_of(session, second)
    _stopped(session, second, stopped, "token_invalid")
    assert "ключ" in (stopped.error_message or "") or "токен" in (stopped.error_message or "")


def test_the_operator_sees_the_stopped_reply_on_the_question_page(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    client: TestClient,
) -> None:
    operator = make_user(session, Role.admin, name="Оператор Анна")  # signs in below
    _, second = _revoked_mid_way(session, connection, settings, clock, operator, TARGETS[0])
    (stopped,) = items_of(session, second)
    sign_in(client, operator, session)
    page = client.get(f"/questions/{second.id}").text
    # Not published, why and what to do (in Russian), and a button to try again.
    assert "Ошибка: не опубликован" in page
    assert "ВКонтакте не принимает ключ доступа страницы" in page
    assert (stopped.error_message or "-")[:60] in page
    assert "Повторить" in page


def _revoked_mid_way(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
) -> tuple[Question, Question]:
    """Two replies on one page: the first published, then the token is refused."""
    first = target.make(session, clock)
    second = make_question(
        session,
        page_id=first.page_id,
        platform=first.platform,
        kind=first.kind,
        thread_key=first.thread_key + "0",
        source_key=f"{first.thread_key}0:1",
        reply_ref=dict(citizen_message(session, first).reply_ref or {}),
    )
    reply(session, first, operator, clock)
    reply(session, second, operator, clock)
    fake = FakePlatform([target.sent(1), target.revoked])
    run(connection, settings, clock, fake)
    clock.advance(hours=5)
    run(connection, settings, clock, fake)  # nothing is tried again
    assert len(fake.calls) == 2
    return first, second


@pytest.mark.parametrize("target", [TARGETS[1], TARGETS[3]], ids=str)
def test_a_long_reply_cut_off_after_its_first_part_is_not_sent_again(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    target: Target,
) -> None:
    """Parts already published would be posted again by a retry: the operator finishes it."""
    question = target.make(session, clock)
    reply(session, question, operator, clock, text="Подробный ответ. " * 400)  # two parts
    fake = FakePlatform([target.sent(1), httpx.Response(503, text="busy"), target.sent(2)])
    run(connection, settings, clock, fake)
    clock.advance(hours=1)
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    _stopped(session, question, item, "partly_published")
    assert len(fake.calls) == 2
