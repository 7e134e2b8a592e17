"""The JSON API of the operator's actions, tokens and webhook subscriptions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.core.config import Settings
from app.directory.models import Platform
from app.questions import outgoing
from app.questions.models import OutboxItem, OutboxStatus, WebhookSubscription
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution
from tests.factories.questions import make_question
from tests.outbox.outbox_helpers import VK_GROUP, FakePlatform, question_on, run, vk_error, vk_ok


def _vk_comment_question(session: Session, clock: FrozenClock, **overrides: object) -> object:
    question = question_on(
        session,
        Platform.vk,
        {"method": "wall", "owner_id": f"-{VK_GROUP}", "post_id": "1542", "comment_id": "9187"},
        external_id=f"wall:-{VK_GROUP}_1542:9187",
        thread_key=f"wall:-{VK_GROUP}_1542",
        page_external_id=VK_GROUP,
        created_at=clock() - timedelta(minutes=30),
        **overrides,
    )
    return question


def test_a_reply_through_the_api_is_published_by_the_worker(
    client: TestClient,
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    """Acceptance: API reply -> outbox -> wall.createComment -> the question shows it."""
    institution = make_institution(session)
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    headers = auth_headers(session, operator)
    question = _vk_comment_question(session, clock, institution_id=institution.id)
    qid = question.id  # type: ignore[attr-defined]
    session.commit()

    answer = client.post(
        f"/api/v1/questions/{qid}/reply",
        json={"text": "Ирина, здравствуйте! Участок включён в план на май.", "interim": False},
        headers=headers,
    )
    assert answer.status_code == 202, answer.text
    item = answer.json()
    assert item["status"] == "pending" and item["question_id"] == qid

    clock.advance(seconds=2)
    fake = FakePlatform([vk_ok({"comment_id": 9195, "parents_stack": [9187]})])
    assert run(connection, settings, clock, fake) == 1
    (call,) = fake.calls
    assert call.path == "/method/wall.createComment"
    assert call.form["reply_to_comment"] == "9187"
    assert call.form["message"] == "Ирина, здравствуйте! Участок включён в план на май."

    session.expire_all()  # the API shares the test's session; the worker used its own
    detail = client.get(f"/api/v1/questions/{qid}", headers=headers).json()
    assert detail["status"] == "answered"
    response = next(m for m in detail["messages"] if m["direction"] == "out")
    assert response["source"] == "otklik"
    assert response["external_id"] == f"wall:-{VK_GROUP}_1542:9195"
    assert response["sent_at"] == clock().isoformat().replace("+00:00", "Z")
    assert response["permalink"].endswith("?reply=9195&thread=9187")
    assert detail["sla"]["first_response"]["state"] == "met"
    assert [t["kind"] for t in detail["timeline"]][-1] == "response"
    outbox = client.get(f"/api/v1/questions/{qid}/outbox", headers=headers).json()
    assert outbox["items"][0]["status"] == "sent"
    assert outbox["items"][0]["external_id"] == "9195"


def test_a_failed_reply_shows_the_reason_in_russian(
    client: TestClient,
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    question = _vk_comment_question(session, clock)
    qid = question.id  # type: ignore[attr-defined]
    session.commit()
    client.post(f"/api/v1/questions/{qid}/reply", json={"text": "Ответ"}, headers=headers)
    run(connection, settings, clock, FakePlatform([vk_error(5, "User authorization failed")]))
    session.expire_all()

    item = client.get(f"/api/v1/questions/{qid}/outbox", headers=headers).json()["items"][0]
    assert item["status"] == "failed" and item["error_code"] == "token_invalid"
    assert "Создайте новый ключ" in item["error_message"]
    detail = client.get(f"/api/v1/questions/{qid}", headers=headers).json()
    failed = next(t for t in detail["timeline"] if t["kind"] == "reply_failed")
    assert failed["data"]["message"] == item["error_message"]
    assert detail["sla"]["first_response"]["state"] == "running"
    assert detail["status"] != "answered"

    retried = client.post(f"/api/v1/questions/{qid}/outbox/{item['id']}/retry", headers=headers)
    assert retried.status_code == 202 and retried.json()["status"] == "pending"


def test_reply_refused_with_the_error_format(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    question = question_on(
        session,
        Platform.vk,
        {"method": "photo", "owner_id": f"-{VK_GROUP}", "photo_id": "4", "comment_id": "5"},
        external_id="photo:1",
        thread_key="photo:x",
    )
    check = client.get(f"/api/v1/questions/{question.id}/reply-check", headers=headers).json()
    assert check["can_reply"] is False and "ключом администратора" in check["problem"]
    answer = client.post(
        f"/api/v1/questions/{question.id}/reply", json={"text": "Ответ"}, headers=headers
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "cannot_reply"
    assert answer.json()["error"]["message"] == check["problem"]
    bad = client.post(
        f"/api/v1/questions/{question.id}/reply",
        json={"text": "Ответ", "interim": True},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "expected_at_required"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "reply", {"text": "x"}),
        ("get", "reply-check", None),
        ("get", "outbox", None),
        ("post", "outbox/1/retry", None),
        ("post", "notes", {"text": "x"}),
        ("post", "assign", {"user_id": None}),
        ("post", "claim", None),
        ("post", "release", None),
        ("post", "status", {"status": "closed"}),
    ],
)
def test_questions_outside_the_scope_are_404(
    client: TestClient, session: Session, method: str, path: str, body: object
) -> None:
    operator = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    question = make_question(session)
    answer = client.request(
        method.upper(),
        f"/api/v1/questions/{question.id}/{path}",
        json=body,
        headers=auth_headers(session, operator),
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "question_not_found"


def test_notes_assignment_and_status(client: TestClient, session: Session) -> None:
    institution = make_institution(session)
    anna = make_user(session, Role.operator, institution_ids=[institution.id], name="Анна")
    boris = make_user(session, Role.operator, institution_ids=[institution.id])
    question = make_question(session, institution_id=institution.id)
    url = f"/api/v1/questions/{question.id}"
    headers = auth_headers(session, anna)

    note = client.post(f"{url}/notes", json={"text": "Жду ответа Дорстроя"}, headers=headers)
    assert note.status_code == 201 and note.json()["source"] == "note"
    claimed = client.post(f"{url}/claim", headers=headers).json()
    assert claimed["assignee_id"] == anna.id and claimed["status"] == "in_progress"
    taken = client.post(f"{url}/claim", headers=auth_headers(session, boris))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "already_assigned"
    given = client.post(f"{url}/assign", json={"user_id": boris.id}, headers=headers).json()
    assert given["assignee_id"] == boris.id
    assert client.post(f"{url}/release", headers=headers).status_code == 403
    waiting = client.post(f"{url}/status", json={"status": "waiting_citizen"}, headers=headers)
    assert waiting.json()["status"] == "waiting_citizen"
    closed = client.post(f"{url}/status", json={"status": "closed"}, headers=headers).json()
    assert closed["status"] == "closed"
    again = client.post(f"{url}/status", json={"status": "waiting_citizen"}, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert (
        client.post(f"{url}/status", json={"status": "reopen"}, headers=headers).json()["status"]
        == "in_progress"
    )
    kinds = [t["kind"] for t in client.get(url, headers=headers).json()["timeline"]]
    assert {"note", "assigned", "status"} <= set(kinds)


def test_canned_responses_crud_and_render(client: TestClient, session: Session) -> None:
    institution = make_institution(session, name="Школа № 3")
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    headers = auth_headers(session, operator)
    question = make_question(session, institution_id=institution.id, citizen_name="Павел Орлов")
    created = client.post(
        "/api/v1/canned-responses",
        json={
            "institution_id": institution.id,
            "title": "Приветствие",
            "text": "{{citizen_name}}, здравствуйте! Пишет {{institution}}.",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    rendered = client.post(
        f"/api/v1/canned-responses/{cid}/render", json={"question_id": question.id}, headers=headers
    )
    assert rendered.json() == {"text": "Павел, здравствуйте! Пишет Школа № 3."}
    patched = client.patch(
        f"/api/v1/canned-responses/{cid}", json={"title": "Привет"}, headers=headers
    )
    assert patched.json()["title"] == "Привет"
    listed = client.get("/api/v1/canned-responses", headers=headers).json()
    assert [c["id"] for c in listed["items"]] == [cid] and listed["next_cursor"] is None
    assert client.delete(f"/api/v1/canned-responses/{cid}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/canned-responses/{cid}", headers=headers).status_code == 404


def test_api_tokens_are_shown_once_listed_with_last_use_and_revocable(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    admin_headers = auth_headers(session, make_user(session, Role.admin))
    operator = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    created = client.post(
        "/api/v1/tokens", json={"user_id": operator.id, "name": "СЭД"}, headers=admin_headers
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith(created.json()["prefix"])
    own = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/questions", headers=own).status_code == 200
    assert client.get("/api/v1/tokens", headers=own).status_code == 403

    listed = client.get(f"/api/v1/tokens?user_id={operator.id}", headers=admin_headers).json()
    (row,) = listed["items"]
    assert "token" not in row and row["last_used_at"] is not None and row["revoked_at"] is None

    revoked = client.delete(f"/api/v1/tokens/{row['id']}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/questions", headers=own).status_code == 401
    missing = client.post("/api/v1/tokens", json={"user_id": 10**9}, headers=admin_headers)
    assert missing.status_code == 422


def test_webhook_subscriptions(client: TestClient, session: Session, clock: FrozenClock) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    created = client.post(
        "/api/v1/webhook-subscriptions",
        json={
            "url": "https://sed.example.ru/hook",
            "events": ["question.answered", "sla.breached"],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    sid, secret = created.json()["id"], created.json()["secret"]
    assert len(secret) >= 32
    fetched = client.get(f"/api/v1/webhook-subscriptions/{sid}", headers=headers).json()
    assert "secret" not in fetched and fetched["events"] == ["question.answered", "sla.breached"]
    unknown = client.post(
        "/api/v1/webhook-subscriptions",
        json={"url": "https://x.example.ru/h", "events": ["question.eaten"]},
        headers=headers,
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_event"
    paused = client.patch(
        f"/api/v1/webhook-subscriptions/{sid}", json={"is_active": False}, headers=headers
    )
    assert paused.json()["is_active"] is False
    client.patch(f"/api/v1/webhook-subscriptions/{sid}", json={"is_active": True}, headers=headers)

    outgoing.emit(session, "sla.breached", make_question(session), clock())
    session.commit()
    assert client.delete(f"/api/v1/webhook-subscriptions/{sid}", headers=headers).status_code == 204
    session.expire_all()
    assert session.get(WebhookSubscription, sid) is None
    items = session.exec(sa.select(OutboxItem.status)).all()  # type: ignore[call-overload]
    assert [row[0] for row in items] == [OutboxStatus.cancelled]
    operator = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    operator_headers = auth_headers(session, operator)
    assert client.get("/api/v1/webhook-subscriptions", headers=operator_headers).status_code == 403
