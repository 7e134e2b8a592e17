"""Operators' routing actions through the API: transfer, dismiss, reclassify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.models import Notification, Role
from app.questions.models import OutboxItem, QuestionStatus, TimelineEntry, WebhookSubscription
from app.sla import service as sla
from app.sla.models import ClockState, Target
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution
from tests.factories.questions import make_question

T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # Tuesday 10:00 in Yekaterinburg


def test_transfer_moves_the_question_and_keeps_who_when_from_to_why(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    school = make_institution(session, name="Школа №1")
    roads = make_institution(session, name="Управление дорог")
    question = make_question(session, institution_id=school.id, created_at=T0)
    due_before = question.due_at
    session.add(
        WebhookSubscription(url="https://crm.example/hook", events=["question.transferred"])
    )
    operator = make_user(session, Role.operator, institution_ids=[school.id], name="Анна")
    receiver = make_user(session, Role.operator, institution_ids=[roads.id])
    headers = auth_headers(session, operator)
    # 07:00 UTC: two hours (120 working minutes) after the question came.
    response = client.post(
        f"/api/v1/questions/{question.id}/transfer",
        json={"institution_id": roads.id, "reason": "Вопрос о дорогах, не о школе"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["institution_id"] == roads.id
    entry = body["timeline"][-1]
    assert entry["kind"] == "transferred"
    assert entry["actor_id"] == operator.id
    assert entry["at"] == "2026-03-10T07:00:00Z"
    assert entry["data"] | {} == {
        "from_institution_id": school.id,
        "to_institution_id": roads.id,
        "reason": "Вопрос о дорогах, не о школе",
        "by_user_id": operator.id,
        "by_name": "Анна",
        "held_since": T0.isoformat(),
        "held_wall_minutes": 120.0,
        "held_working_minutes": 120.0,
    }
    # The citizen's clock keeps running with the same deadline.
    session.refresh(question)
    assert question.due_at == due_before
    assert sla.clocks_of(session, question)[Target.first_response].state == ClockState.running
    # The sender no longer sees it; the receiving queue does and is told.
    assert client.get(f"/api/v1/questions/{question.id}", headers=headers).status_code == 404
    theirs = client.get(f"/api/v1/questions/{question.id}", headers=auth_headers(session, receiver))
    assert theirs.status_code == 200
    notes = session.exec(select(Notification).where(Notification.user_id == receiver.id)).all()
    assert [n.kind for n in notes] == ["transferred"]
    hooks = session.exec(select(OutboxItem).where(OutboxItem.question_id == question.id)).all()
    assert [h.payload["event"] for h in hooks] == ["question.transferred"]
    # A second move counts the time held from the first one.
    clock.advance(hours=1)
    again = client.post(
        f"/api/v1/questions/{question.id}/transfer",
        json={"institution_id": school.id, "reason": "Ошиблись"},
        headers=auth_headers(session, receiver),
    ).json()
    last = again["timeline"][-1]["data"]
    assert last["held_since"] == "2026-03-10T07:00:00+00:00"
    assert last["held_wall_minutes"] == 60.0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"institution_id": 999_999, "reason": "x"}, 404, "institution_not_found"),
        ({"institution_id": None, "reason": "   "}, 422, "reason_required"),
    ],
)
def test_transfer_refusals(
    client: TestClient, session: Session, body: dict[str, object], status: int, code: str
) -> None:
    question = make_question(session)
    if body["institution_id"] is None:
        body = {**body, "institution_id": make_institution(session).id}
    headers = auth_headers(session, make_user(session, Role.admin))
    response = client.post(f"/api/v1/questions/{question.id}/transfer", json=body, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    same = client.post(
        f"/api/v1/questions/{question.id}/transfer",
        json={"institution_id": question.institution_id, "reason": "x"},
        headers=headers,
    )
    assert same.status_code == 409


@pytest.mark.parametrize("reason", ["spam", "gratitude", "off_topic", "duplicate", "formal_appeal"])
def test_dismissal_carries_a_reason_and_stops_the_clocks(
    client: TestClient, session: Session, reason: str
) -> None:
    question = make_question(session, created_at=T0)
    headers = auth_headers(session, make_user(session, Role.admin))
    response = client.post(
        f"/api/v1/questions/{question.id}/dismiss", json={"reason": reason}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["dismiss_reason"]) == ("dismissed", reason)
    assert body["sla"]["first_response"]["state"] == "none"
    assert body["timeline"][-1]["kind"] == "dismissed"
    assert body["timeline"][-1]["data"]["reason"] == reason
    again = client.post(
        f"/api/v1/questions/{question.id}/dismiss", json={"reason": reason}, headers=headers
    )
    assert again.status_code == 409


def test_dismissal_needs_a_known_reason_and_a_note_for_other(
    client: TestClient, session: Session
) -> None:
    question = make_question(session)
    headers = auth_headers(session, make_user(session, Role.admin))
    url = f"/api/v1/questions/{question.id}/dismiss"
    assert client.post(url, json={"reason": "boring"}, headers=headers).status_code == 422
    other = client.post(url, json={"reason": "other"}, headers=headers)
    assert other.json()["error"]["code"] == "note_required"
    ok = client.post(url, json={"reason": "other", "note": "Тест"}, headers=headers)
    assert ok.json()["status"] == "dismissed"
    session.refresh(question)
    assert question.dismiss_note == "Тест"


def test_reclassification_starts_clocks_from_the_citizen_s_time(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    question = make_question(session, created_at=T0, text="Хорошая погода сегодня")
    assert question.classification == "other"
    assert sla.clocks_of(session, question) == {}
    headers = auth_headers(session, make_user(session, Role.admin))
    clock.now = T0 + timedelta(days=1)
    body = client.post(
        f"/api/v1/questions/{question.id}/reclassify",
        json={"classification": "complaint"},
        headers=headers,
    ).json()
    assert body["classification"] == "complaint"
    assert body["classification_rule"] == "manual"
    first = body["sla"]["first_response"]
    # Counted from Tuesday 10:00 local, not from the reclassification a day later.
    assert (first["state"], first["due_at"]) == ("running", "2026-03-10T13:00:00Z")
    assert body["timeline"][-1]["data"] == {"from": "other", "to": "complaint"}
    back = client.post(
        f"/api/v1/questions/{question.id}/reclassify",
        json={"classification": "gratitude"},
        headers=headers,
    ).json()
    assert back["sla"]["first_response"]["state"] == "none"
    session.refresh(question)
    assert question.due_at is None
    bad = client.post(
        f"/api/v1/questions/{question.id}/reclassify",
        json={"classification": "poetry"},
        headers=headers,
    )
    assert bad.status_code == 422


def test_actions_are_scoped(client: TestClient, session: Session) -> None:
    question = make_question(session)
    stranger = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    response = client.post(
        f"/api/v1/questions/{question.id}/dismiss",
        json={"reason": "spam"},
        headers=auth_headers(session, stranger),
    )
    assert response.status_code == 404
    session.refresh(question)
    assert question.status == QuestionStatus.new
    kinds = session.exec(
        select(TimelineEntry.kind).where(col(TimelineEntry.question_id) == question.id)
    ).all()
    assert sorted(kinds) == ["classified", "created"]  # the question's arrival, nothing more
