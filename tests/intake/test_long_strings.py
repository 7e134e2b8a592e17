"""Over-long platform strings are bounded the same way on SQLite and PostgreSQL.

Every platform's deliveries are sent with their names, titles, usernames, ids and
keys blown up past every column: each is processed (PostgreSQL would refuse a
VARCHAR(n) overflow and fail the delivery; SQLite would quietly keep it), every
bounded column holds at most its length, and an edit of an object with an over-long
key still finds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel, col, select

from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.processing import bounds
from app.questions.models import Message, Question, ThreadContext
from tests.factories.directory import make_page
from tests.live import settle
from webhooks.generic import sign

Payload = Callable[[str, str], bytes]
LONG = 1500  # past every bounded column (the longest is 1,000)


def _inflate(value: Any, fields: Iterable[str]) -> Any:
    """The payload with these fields (at any depth) repeated to LONG characters;
    numbers become strings of digits (platforms send ids both ways)."""
    wanted = set(fields)

    def grow(v: Any) -> Any:
        text = str(v)
        return (text * (LONG // max(len(text), 1) + 1))[:LONG]

    if isinstance(value, dict):
        return {
            k: grow(v) if k in wanted and isinstance(v, str | int) else _inflate(v, wanted)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_inflate(v, wanted) for v in value]
    return value


def _body(payload: Payload, platform: str, name: str, fields: Iterable[str]) -> bytes:
    return json.dumps(_inflate(json.loads(payload(platform, name)), fields)).encode()


def _page(db: Session, platform: Platform, external_id: str, secret: str | None) -> Page:
    page = make_page(db, platform=platform, external_id=external_id, secret=secret)
    db.commit()
    return page


def _send(live: TestClient, page: Page, body: bytes, headers: dict[str, str]) -> None:
    response = live.post(f"/webhooks/{page.platform}/{page.key}", content=body, headers=headers)
    assert response.status_code == 200, response.text


def _check_columns(db: Session) -> list[Question]:
    """Every delivery processed, every bounded column within its length."""
    db.commit()
    db.expire_all()
    events = db.exec(select(InboundEvent)).all()
    assert events
    failed = [(e.event_types, e.last_error) for e in events if e.status == EventStatus.failed]
    assert not failed
    assert all(e.status in (EventStatus.processed, EventStatus.ignored) for e in events)
    model: type[SQLModel]
    for model in (Question, Message, ThreadContext, InboundEvent):
        table = model.__table__  # type: ignore[attr-defined]
        bounded = [c for c in table.columns if isinstance(c.type, sa.String) and c.type.length]
        for row in db.exec(select(model)).all():
            for column in bounded:
                value = getattr(row, column.key)
                if isinstance(value, str):
                    assert len(value) <= column.type.length, (table.name, column.key, len(value))
    return list(db.exec(select(Question).order_by(col(Question.id))).all())


def test_vk_comment_with_over_long_ids_and_its_edit(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(db, Platform.vk, "218734591", "Zr7qL2vN9xKw")
    ids = ("from_id", "post_id", "id", "reply_to_comment", "reply_to_user")
    _send(live, page, _body(payload, "vk", "wall_reply_new", ids), {})
    settle(live_app)
    [question] = _check_columns(db)
    assert len(question.citizen_platform_id) == bounds.KEY_MAX
    assert question.permalink is None  # a link cut short would lead nowhere
    edit = json.loads(_body(payload, "vk", "wall_reply_edit", ids))
    edit["object"]["text"] = "Исправленный текст длинного комментария"
    _send(live, page, json.dumps(edit).encode(), {})
    settle(live_app)
    [question] = _check_columns(db)
    [message] = db.exec(select(Message).where(Message.question_id == question.id)).all()
    assert message.text == "Исправленный текст длинного комментария"


def test_telegram_channel_with_a_very_long_username(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(db, Platform.telegram, "-1001987654321", "tg-secret_Token-1")
    headers = {"X-Telegram-Bot-Api-Secret-Token": "tg-secret_Token-1"}
    fields = ("username", "title", "first_name", "last_name")
    for name in ("channel_post", "automatic_forward", "comment", "channel_reply", "private_text"):
        _send(live, page, _body(payload, "telegram", name, fields), headers)
    settle(live_app)
    questions = _check_columns(db)
    assert len(questions) == 2
    assert all(len(q.citizen_name) == bounds.NAME_MAX for q in questions)
    assert all(q.citizen_name.endswith("…") for q in questions)


def test_ok_message_with_over_long_ids_and_name(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(db, Platform.ok, "70000001234567", None)
    _send(live, page, _body(payload, "ok", "message", ("user_id", "name", "chat_id", "mid")), {})
    settle(live_app)
    [question] = _check_columns(db)
    assert question.citizen_name.startswith("Людмила Соколова")


def test_max_comment_and_message_with_over_long_strings(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(db, Platform.max, "-70011223344", "max_Secret-2025")
    headers = {"X-Max-Bot-Api-Secret": "max_Secret-2025"}
    fields = ("first_name", "last_name", "name", "username", "post_id", "mid", "user_id")
    for name in ("channel_post", "comment_created", "message_created_dialog", "message_edited"):
        _send(live, page, _body(payload, "max", name, fields), headers)
    settle(live_app)
    questions = _check_columns(db)
    assert len(questions) == 2


def test_generic_source_with_over_long_strings(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(db, Platform.generic, "site-form", "generic-hmac-key")
    body = _body(payload, "generic", "message", ("id", "thread_id", "name", "permalink"))
    _send(live, page, body, {"X-Otklik-Signature": sign("generic-hmac-key", body)})
    settle(live_app)
    [question] = _check_columns(db)
    assert question.permalink is None


def test_bounded_keys_stay_distinct_and_stable() -> None:
    a, b = "k" * 300 + "a", "k" * 300 + "b"
    assert bounds.key(a) != bounds.key(b)
    assert bounds.key(a) == bounds.key(a) and len(bounds.key(a)) == bounds.KEY_MAX
    assert bounds.key("short") == "short"
