"""Webhook deliveries end to end: verified, stored before the answer, threaded into questions."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.questions.models import Message, Question, ThreadContext
from tests.factories.directory import make_page
from tests.live import settle

Payload = Callable[[str, str], bytes]


def _vk_page(db: Session, **overrides: object) -> Page:
    page = make_page(
        db, platform=Platform.vk, external_id="218734591", secret="Zr7qL2vN9xKw", **overrides
    )
    db.commit()
    return page


def _post(client: TestClient, page: Page, body: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/webhooks/{page.platform}/{page.key}", content=body, headers=headers or {})


def _count(db: Session, model: type) -> int:
    db.commit()  # end the read transaction: see what the receiver committed since
    return int(db.exec(select(sa.func.count()).select_from(model)).one())


def _questions(db: Session) -> list[Question]:
    db.commit()  # a new snapshot: the receiver commits on its own
    db.expire_all()
    return list(db.exec(select(Question).order_by(col(Question.id))).all())


def _messages(db: Session, question_id: int) -> list[Message]:
    db.commit()
    return list(
        db.exec(
            select(Message).where(Message.question_id == question_id).order_by(col(Message.id))
        ).all()
    )


def test_vk_confirmation_answers_the_code_and_stores_nothing(
    live: TestClient, db: Session, payload: Payload
) -> None:
    page = _vk_page(db, confirmation_code="a1b2c3d4")
    response = _post(live, page, payload("vk", "confirmation"))
    assert response.status_code == 200
    assert response.text == "a1b2c3d4"
    assert _count(db, InboundEvent) == 0


def test_vk_comment_becomes_a_question(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    response = _post(live, page, payload("vk", "wall_reply_new"))
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"].startswith("text/plain")
    settle(live_app)
    [question] = _questions(db)
    assert question.kind == "comment" and question.platform == "vk"
    assert question.institution_id == page.institution_id
    assert question.citizen_platform_id == "512348907"
    assert question.created_at == datetime.fromtimestamp(1760422353, UTC)
    assert "Садовой" in question.text
    assert question.permalink and "wall-218734591_1542" in question.permalink
    [message] = _messages(db, question.id or 0)
    assert message.source == "citizen" and message.external_id == "wall:-218734591_1542:9187"
    assert message.delay_seconds is not None and message.delay_seconds > 0
    db.commit()
    event = db.exec(select(InboundEvent)).one()
    assert event.status == EventStatus.processed and event.event_types == "wall_reply_new"


def test_duplicate_delivery_is_acknowledged_and_changes_nothing(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    body = payload("vk", "wall_reply_new")
    for _ in range(3):
        response = _post(live, page, body)
        assert (response.status_code, response.text) == (200, "ok")
    settle(live_app)
    assert len(_questions(db)) == 1
    assert _count(db, InboundEvent) == 1
    assert _count(db, Message) == 1


def test_native_page_reply_answers_the_question(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "wall_reply_new"))
    _post(live, page, payload("vk", "wall_reply_new_page"))
    settle(live_app)
    [question] = _questions(db)
    assert question.status == "answered"
    assert question.first_response_at == datetime.fromtimestamp(1760429700, UTC)
    citizen, reply = _messages(db, question.id or 0)
    assert (citizen.direction, citizen.source) == ("in", "citizen")
    assert (reply.direction, reply.source) == ("out", "native")
    detail = live.get(f"/api/v1/questions/{question.id}", headers=_admin_headers(db))
    assert detail.status_code == 200
    assert [m["source"] for m in detail.json()["messages"]] == ["citizen", "native"]
    assert "response" in [t["kind"] for t in detail.json()["timeline"]]


def test_another_citizens_reply_in_the_thread_is_its_own_linked_question(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "wall_reply_new"))
    _post(live, page, payload("vk", "wall_reply_new_page"))
    # Another citizen replies to the page's answer: «а тротуар там тоже сделают?»
    _post(live, page, payload("vk", "wall_reply_new_thread"))
    settle(live_app)
    first, second = _questions(db)
    assert first.citizen_platform_id != second.citizen_platform_id
    assert second.linked_question_id == first.id
    assert first.thread_key == second.thread_key


def test_follow_up_from_the_same_citizen_joins_the_question(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "wall_reply_new"))
    follow = json.loads(payload("vk", "wall_reply_new"))
    follow["event_id"] = "f" * 40
    follow["object"]["id"] = 9190
    follow["object"]["date"] += 600
    follow["object"]["text"] = "И ещё: тротуар там тоже разбит."
    _post(live, page, json.dumps(follow).encode())
    settle(live_app)
    [question] = _questions(db)
    assert [m.text for m in _messages(db, question.id or 0)][1] == "И ещё: тротуар там тоже разбит."


def test_edit_keeps_the_previous_text_and_delete_withdraws(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "wall_reply_new"))
    _post(live, page, payload("vk", "wall_reply_edit"))
    settle(live_app)
    [question] = _questions(db)
    [message] = _messages(db, question.id or 0)
    assert message.edited_at is not None
    assert "Садовой" in message.previous_texts[0]["text"]
    assert question.text == message.text != message.previous_texts[0]["text"]
    deleted = _post(live, page, payload("vk", "wall_reply_delete"))
    assert (deleted.status_code, deleted.text) == (200, "ok")
    settle(live_app)
    [question] = _questions(db)
    assert question.status == "withdrawn"


def test_photo_only_private_message_is_a_question(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "message_new"))
    settle(live_app)
    [question] = _questions(db)
    assert question.kind == "message" and question.text == ""
    [message] = _messages(db, question.id or 0)
    assert message.attachments and message.attachments[0]["type"] == "photo"


def test_vk_group_chat_messages_are_separate_questions(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    body = json.loads(payload("vk", "message_new_chat"))
    _post(live, page, json.dumps(body).encode())
    body["event_id"] = "e" * 40
    body["object"]["message"]["conversation_message_id"] += 1
    body["object"]["message"]["text"] = "Ещё вопрос про вывоз мусора?"
    _post(live, page, json.dumps(body).encode())
    settle(live_app)
    assert len(_questions(db)) == 2


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda b: b.replace(b"Zr7qL2vN9xKw", b"wrong-secret"), 403),
        (lambda b: b.replace(b"218734591", b"999999999", 1), 403),
        (lambda b: b[:-5], 400),
        (lambda b: b"\xff\xfe not json", 400),
    ],
)
def test_bad_deliveries_are_refused_and_store_nothing(
    live: TestClient, db: Session, payload: Payload, change: Callable[[bytes], bytes], status: int
) -> None:
    page = _vk_page(db)
    response = _post(live, page, change(payload("vk", "wall_reply_new")))
    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert _count(db, InboundEvent) == 0
    assert _questions(db) == []


def test_unknown_page_and_oversized_body(live: TestClient, db: Session, payload: Payload) -> None:
    page = _vk_page(db)
    assert (
        live.post("/webhooks/vk/no-such-key", content=payload("vk", "wall_reply_new")).status_code
        == 404
    )
    assert live.post(f"/webhooks/instagram/{page.key}", content=b"{}").status_code == 404
    huge = b'{"type": "wall_reply_new", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert _post(live, page, huge).status_code == 413


def test_unknown_event_type_is_stored_ignored_and_acknowledged(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    response = _post(live, page, payload("vk", "group_join"))
    assert (response.status_code, response.text) == (200, "ok")
    settle(live_app)
    db.commit()
    event = db.exec(select(InboundEvent)).one()
    assert event.status == EventStatus.ignored
    assert _questions(db) == []


def test_storage_failure_answers_503_never_ok(
    live: TestClient,
    live_app: FastAPI,
    db: Session,
    payload: Payload,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = _vk_page(db)
    _post(live, page, payload("vk", "confirmation"))  # creates the receiver
    receiver = live_app.state.receiver

    async def broken(_delivery: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))

    monkeypatch.setattr(receiver.writer, "store", broken)
    response = _post(live, page, payload("vk", "wall_reply_new"))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.text != "ok"


def test_an_acknowledged_event_survives_a_processing_failure(
    live: TestClient,
    live_app: FastAPI,
    db: Session,
    payload: Payload,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.processing import ingest as inbox_service

    page = _vk_page(db)
    original = inbox_service.process

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("routing exploded")

    monkeypatch.setattr(inbox_service, "process", explode)
    response = _post(live, page, payload("vk", "wall_reply_new"))
    assert (response.status_code, response.text) == (200, "ok")
    settle(live_app)
    db.commit()
    event = db.exec(select(InboundEvent)).one()
    assert event.status == EventStatus.failed and "routing exploded" in (event.last_error or "")
    assert event.next_attempt_at is not None
    headers = _admin_headers(db)
    failed = live.get("/api/v1/events/failed", headers=headers).json()
    assert [e["id"] for e in failed["items"]] == [event.id]

    monkeypatch.setattr(inbox_service, "process", original)
    replayed = live.post(f"/api/v1/events/{event.id}/replay", headers=headers)
    assert replayed.status_code == 200 and replayed.json()["status"] == "processed"
    assert len(_questions(db)) == 1
    # Replaying a processed event again changes nothing.
    assert (
        live.post(f"/api/v1/events/{event.id}/replay", headers=headers).json()["status"]
        == "processed"
    )
    assert len(_questions(db)) == 1
    assert _count(db, Message) == 1


def test_the_same_event_ten_times_concurrently_yields_one_message(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _vk_page(db)
    body = payload("vk", "wall_reply_new")
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(10)

    def send() -> None:
        barrier.wait()
        response = _post(live, page, body)
        results.append((response.status_code, response.text))

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settle(live_app)
    assert results == [(200, "ok")] * 10
    assert _count(db, InboundEvent) == 1
    assert _count(db, Message) == 1


def _admin_headers(db: Session) -> dict[str, str]:
    from app.auth.models import Role
    from tests.factories.auth import auth_headers, make_user

    headers = auth_headers(db, make_user(db, Role.admin))
    db.commit()
    return headers


# --- Telegram, OK, MAX, generic ------------------------------------------------


def _page(
    db: Session, platform: Platform, external_id: str, secret: str | None, **kw: object
) -> Page:
    page = make_page(db, platform=platform, external_id=external_id, secret=secret, **kw)
    db.commit()
    return page


def test_telegram_discussion_comments_context_and_channel_reply(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(
        db,
        Platform.telegram,
        "-1001987654321",
        "tg-secret_Token-1",
        access_token="7012345678:AAH-example-token",
    )
    headers = {"X-Telegram-Bot-Api-Secret-Token": "tg-secret_Token-1"}
    assert (
        _post(
            live, page, payload("telegram", "comment"), {"X-Telegram-Bot-Api-Secret-Token": "nope"}
        ).status_code
        == 403
    )
    for name in ("automatic_forward", "comment", "channel_reply"):
        assert _post(live, page, payload("telegram", name), headers).status_code == 200
    settle(live_app)
    [question] = _questions(db)
    assert question.kind == "comment" and question.status == "answered"
    assert "Садовую" in question.text
    db.commit()
    context = db.exec(select(ThreadContext)).one()
    assert "ямочный ремонт" in context.text


def test_telegram_private_photo_and_anonymous_admin(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(
        db,
        Platform.telegram,
        "-1001987654321",
        "tg-secret_Token-1",
        access_token="7012345678:AAH-example-token",
    )
    headers = {"X-Telegram-Bot-Api-Secret-Token": "tg-secret_Token-1"}
    assert _post(live, page, payload("telegram", "private_photo"), headers).status_code == 200
    settle(live_app)
    [question] = _questions(db)
    assert question.kind == "message"
    assert _messages(db, question.id or 0)[0].attachments


def test_ok_message(live: TestClient, live_app: FastAPI, db: Session, payload: Payload) -> None:
    page = _page(db, Platform.ok, "70000001234567", None)
    assert len(page.key) >= 32
    response = _post(live, page, payload("ok", "message"))
    assert response.status_code == 200
    _post(live, page, payload("ok", "message"))
    settle(live_app)
    [question] = _questions(db)
    assert "фонаря" in question.text and question.citizen_name == "Людмила Соколова"


def test_max_message_edit_and_removal(
    live: TestClient, live_app: FastAPI, db: Session, payload: Payload
) -> None:
    page = _page(
        db, Platform.max, "-70011223344", "max_Secret-2025", access_token="max-bot-token-abc"
    )
    headers = {"X-Max-Bot-Api-Secret": "max_Secret-2025"}
    assert (
        _post(
            live, page, payload("max", "message_created_dialog"), {"X-Max-Bot-Api-Secret": "x"}
        ).status_code
        == 403
    )
    for name in ("message_created_dialog", "message_edited", "message_removed"):
        assert _post(live, page, payload("max", name), headers).status_code == 200, name
    settle(live_app)
    [question] = _questions(db)
    [message] = _messages(db, question.id or 0)
    assert message.previous_texts and message.deleted_at is not None
    assert question.status == "withdrawn"


def test_generic_source_is_signed(live: TestClient, live_app: FastAPI, db: Session) -> None:
    from webhooks.generic import sign

    page = _page(db, Platform.generic, "site-form", "generic-hmac-key")
    body = json.dumps(
        {
            "id": "form-1",
            "thread_id": "form-1",
            "kind": "message",
            "author": {"id": "anna@example.ru", "name": "Анна"},
            "text": "Когда откроется запись в секцию?",
            "sent_at": "2026-03-10T10:00:00+05:00",
            "from_page": False,
        },
        ensure_ascii=False,
    ).encode()
    assert _post(live, page, body, {"X-Otklik-Signature": "sha256=" + "0" * 64}).status_code == 403
    assert (
        _post(live, page, body, {"X-Otklik-Signature": sign("generic-hmac-key", body)}).status_code
        == 200
    )
    settle(live_app)
    [question] = _questions(db)
    assert question.created_at == datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
