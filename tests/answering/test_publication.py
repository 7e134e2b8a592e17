"""While a reply is retried, the operator sees the last attempt's reason (issue 10)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role, User
from app.core.config import Settings
from app.questions.models import OutboxStatus
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.outbox.outbox_helpers import FakePlatform, items_of, reply, run, vk_error, vk_wall


@pytest.fixture
def operator(session: Session) -> User:
    return make_user(session, Role.admin, name="Оператор Анна")


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_unreachable, "не удалось соединиться"),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "HTTP 502"),
        (vk_error(6, "Too many requests per second"), "слишком много запросов"),
    ],
)
def test_a_retried_reply_shows_the_last_attempts_reason_in_russian(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
    client: TestClient,
    answer: object,
    reason: str,
) -> None:
    question = vk_wall(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([answer])  # type: ignore[list-item]

    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.pending and item.attempts == 1
    assert item.error_code == "retrying"
    assert item.error_message is not None and reason in item.error_message
    assert "Попытка 1 из 12" in item.error_message

    # The JSON API shows it too, while the item is still pending.
    headers = auth_headers(session, operator)
    session.commit()
    listed = client.get(f"/api/v1/questions/{question.id}/outbox", headers=headers).json()
    (shown,) = listed["items"]
    assert shown["status"] == "pending"
    assert shown["error_code"] == "retrying" and reason in shown["error_message"]


def test_a_published_reply_forgets_the_earlier_attempts_error(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    operator: User,
) -> None:
    question = vk_wall(session, clock)
    reply(session, question, operator, clock)
    fake = FakePlatform([_unreachable, httpx.Response(200, json={"response": {"comment_id": 5}})])
    run(connection, settings, clock, fake)
    clock.advance(minutes=1)
    run(connection, settings, clock, fake)
    (item,) = items_of(session, question)
    assert item.status == OutboxStatus.sent
    assert item.error_code is None and item.error_message is None
