"""A MAX comment or message that its author removes withdraws its unanswered question,
as on the other platforms, whichever update (comment_removed or message_removed) says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from app.directory.models import Platform
from app.questions.models import Question, QuestionKind, QuestionStatus
from tests.factories.directory import make_page
from tests.factories.questions import deliver
from webhooks import get_adapter
from webhooks.base import PageSecrets

MID = "mid.0000000105a1b2c30199e2a4000000c1"
NOW = datetime(2025, 10, 14, 7, 30, tzinfo=UTC)


def _apply(session: Session, page_id: int, body: bytes) -> None:
    secrets = PageSecrets(platform="max", key="k", external_id="-70011223344", secret="s")
    for event in get_adapter("max").parse(secrets, body, NOW):
        deliver(session, page_id, event, received_at=NOW)


@pytest.mark.parametrize(
    "removal",
    [
        {"update_type": "comment_removed", "timestamp": 1760421900000, "comment_id": MID},
        {"update_type": "message_removed", "timestamp": 1760421900000, "message_id": MID},
    ],
)
def test_removed_channel_comment_withdraws_its_question(
    session: Session, payload: Callable[[str, str], bytes], removal: dict[str, object]
) -> None:
    page = make_page(session, platform=Platform.max, external_id="-70011223344")
    assert page.id is not None
    _apply(session, page.id, payload("max", "comment_created"))
    question = session.exec(select(Question).where(Question.page_id == page.id)).one()
    assert question.status == QuestionStatus.new
    _apply(session, page.id, json.dumps(removal).encode())
    session.refresh(question)
    assert question.status == QuestionStatus.withdrawn


def test_removed_group_chat_message_withdraws_its_question(
    session: Session, payload: Callable[[str, str], bytes]
) -> None:
    page = make_page(session, platform=Platform.max, external_id="-68012345678")
    assert page.id is not None
    body = json.loads(payload("max", "message_created_chat_reply"))
    _apply(session, page.id, json.dumps(body).encode())
    question = session.exec(select(Question).where(Question.page_id == page.id)).one()
    assert question.kind == QuestionKind.message  # a group chat is a conversation, not comments
    removal = {
        "update_type": "message_removed",
        "timestamp": 1760424100000,
        "message_id": body["message"]["body"]["mid"],
        "chat_id": -68012345678,
    }
    _apply(session, page.id, json.dumps(removal).encode())
    session.refresh(question)
    assert question.status == QuestionStatus.withdrawn
