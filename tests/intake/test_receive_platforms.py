"""The same promises on every platform: unknown types, malformed bodies, duplicates, secrets, edits."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.questions.models import Message, Question
from tests.factories.directory import make_page
from tests.live import settle
from webhooks.generic import sign

Payload = Callable[[str, str], bytes]


@dataclass(frozen=True)
class Case:
    platform: Platform
    external_id: str
    secret: str | None
    message: str  # a citizen's new message
    unknown: str  # an update type the inbox does not use
    header: str | None  # the secret header, if the platform has one

    def headers(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        value = self.secret if secret is None else secret
        if self.platform == Platform.generic:
            return {"X-Otklik-Signature": sign(value or "", body)}
        return {self.header: value or ""} if self.header else {}


CASES = [
    Case(Platform.vk, "218734591", "Zr7qL2vN9xKw", "message_new_text", "group_join", None),
    Case(
        Platform.telegram,
        "-1001987654321",
        "tg-secret_Token-1",
        "private_text",
        "message_reaction",
        "X-Telegram-Bot-Api-Secret-Token",
    ),
    Case(Platform.ok, "70000001234567", None, "message", "chat_system", None),
    Case(
        Platform.max,
        "-70011223344",
        "max_Secret-2025",
        "message_created_dialog",
        "bot_started",
        "X-Max-Bot-Api-Secret",
    ),
    Case(Platform.generic, "crm", "generic-key", "message", "", None),
]


def _page(db: Session, case: Case) -> Page:
    page = make_page(
        db,
        platform=case.platform,
        external_id=case.external_id,
        secret=case.secret,
        access_token="7012345678:AAH-example-token",
    )
    db.commit()
    return page


def _post(client: TestClient, page: Page, case: Case, body: bytes, secret: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        f"/webhooks/{page.platform}/{page.key}", content=body, headers=case.headers(body, secret)
    )


def _count(db: Session, model: type) -> int:
    db.commit()
    return int(db.exec(select(sa.func.count()).select_from(model)).one())


@pytest.mark.parametrize("case", CASES, ids=[c.platform for c in CASES])
def test_duplicates_and_bad_bodies(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload, case: Case
) -> None:
    page = _page(db, case)
    body = payload(str(case.platform), case.message)
    for _ in range(3):
        response = _post(live, page, case, body)
        assert response.status_code == 200, response.text
    settle(live_app)
    assert _count(db, InboundEvent) == 1
    assert _count(db, Question) == 1
    assert _count(db, Message) == 1

    malformed = _post(live, page, case, b'{"update_id": 1, "message": ')
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed"
    if case.platform == Platform.vk:
        forged = body.replace(b"Zr7qL2vN9xKw", b"not-the-secret")
        assert _post(live, page, case, forged).status_code == 403
    elif case.secret is not None:
        assert _post(live, page, case, body, secret="not-the-secret").status_code == 403
    else:
        # OK carries no secret: the long random page key is the credential.
        wrong = page.key[:-1] + ("y" if page.key.endswith("x") else "x")
        assert live.post(f"/webhooks/ok/{wrong}", content=body).status_code == 404
    assert _count(db, InboundEvent) == 1


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.unknown], ids=[c.platform for c in CASES if c.unknown]
)
def test_unknown_types_are_stored_ignored_and_acknowledged(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload, case: Case
) -> None:
    page = _page(db, case)
    response = _post(live, page, case, payload(str(case.platform), case.unknown))
    assert response.status_code == 200
    settle(live_app)
    db.commit()
    event = db.exec(select(InboundEvent)).one()
    assert event.status == EventStatus.ignored
    assert _count(db, Question) == 0


def test_telegram_edit_keeps_the_previous_text(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    case = CASES[1]
    page = _page(db, case)
    _post(live, page, case, payload("telegram", "private_text"))
    _post(live, page, case, payload("telegram", "edited_message"))
    settle(live_app)
    db.commit()
    message = db.exec(select(Message)).one()
    assert message.edited_at is not None and message.previous_texts
    assert "яма во дворе" in message.text


def test_generic_reply_from_page_answers_its_thread(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    case = CASES[4]
    page = _page(db, case)
    question = json.dumps(
        {
            "id": "site-comment-75",
            "thread_id": "site-news-1203",
            "kind": "comment",
            "author": {"id": "reader-9", "name": "Игорь"},
            "text": "Когда починят освещение в сквере?",
            "sent_at": "2025-10-14T09:00:00Z",
            "from_page": False,
        },
        ensure_ascii=False,
    ).encode()
    assert _post(live, page, case, question).status_code == 200
    assert _post(live, page, case, payload("generic", "comment_from_page")).status_code == 200
    settle(live_app)
    db.commit()
    answered = db.exec(select(Question)).one()
    assert answered.status == "answered"
    assert answered.first_response_at is not None and answered.first_response_at.hour == 10
