"""The question page's actions (claim, assign, notes, status, classification, transfer,
dismissal): each a form that works without JS (303) and with htmx (the fragment), each
on the timeline; and the transfer targets, in the page and in the JSON API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.questions.models import Message, MessageSource, Question, QuestionStatus, TimelineEntry
from tests.answering.web import HTMX, World, sign_in
from tests.factories.auth import auth_headers


@pytest.fixture(params=["page", "htmx"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _kinds(session: Session, question: Question) -> list[str]:
    session.expire_all()
    return list(
        session.exec(
            select(TimelineEntry.kind).where(TimelineEntry.question_id == question.id)
        ).all()
    )


def _post(client: TestClient, url: str, mode: str, **data: str) -> object:
    return client.post(
        url, data=data, headers=HTMX if mode == "htmx" else {}, follow_redirects=False
    )


def test_take_assign_note_wait_resume_close_reopen(
    client: TestClient, session: Session, world: World, mode: str
) -> None:
    token = sign_in(client, world.operator, session)
    q = world.question
    base = f"/questions/{q.id}"

    taken = _post(client, f"{base}/claim", mode, csrf_token=token)
    if mode == "htmx":
        assert taken.status_code == 200  # type: ignore[attr-defined]
        assert taken.headers["hx-trigger"] == "question-changed"  # type: ignore[attr-defined]
        assert 'id="question"' in taken.text and "Вопрос ваш." in taken.text  # type: ignore[attr-defined]
    else:
        assert taken.status_code == 303  # type: ignore[attr-defined]
        assert taken.headers["location"].endswith(f"{base}?done=claim")  # type: ignore[attr-defined]
    session.refresh(q)
    assert q.assignee_id == world.operator.id and q.status == QuestionStatus.in_progress

    _post(client, f"{base}/assign", mode, csrf_token=token, user_id=str(world.colleague.id))
    _post(client, f"{base}/notes", mode, csrf_token=token, note_text="Позвонила завучу")
    _post(client, f"{base}/status", mode, csrf_token=token, status="waiting_citizen")
    session.refresh(q)
    assert q.assignee_id == world.colleague.id and q.status == QuestionStatus.waiting_citizen
    page = client.get(base).text
    assert "Позвонила завучу" in page and "Вернуть в работу" in page
    _post(client, f"{base}/status", mode, csrf_token=token, status="in_progress")
    _post(client, f"{base}/status", mode, csrf_token=token, status="closed")
    session.refresh(q)
    assert q.status == QuestionStatus.closed
    assert "Открыть снова" in client.get(base).text
    _post(client, f"{base}/status", mode, csrf_token=token, status="reopen")
    session.refresh(q)
    assert q.status == QuestionStatus.in_progress
    kinds = _kinds(session, q)
    assert kinds.count("assigned") == 2 and kinds.count("status") == 4 and "note" in kinds
    note = session.exec(
        select(Message).where(Message.question_id == q.id, Message.source == MessageSource.note)
    ).one()
    assert note.text == "Позвонила завучу"


def test_a_refused_action_says_why_and_keeps_the_values(
    client: TestClient, session: Session, world: World, mode: str
) -> None:
    token = sign_in(client, world.operator, session)
    base = f"/questions/{world.question.id}"
    empty = _post(client, f"{base}/notes", mode, csrf_token=token, note_text="  ")
    assert empty.status_code == 422  # type: ignore[attr-defined]
    assert "Напишите текст заметки" in empty.text  # type: ignore[attr-defined]
    # A colleague took it: 409 without JS, a notice either way; nothing changes.
    world.question.assignee_id = world.colleague.id
    session.add(world.question)
    session.commit()
    taken = _post(client, f"{base}/claim", mode, csrf_token=token)
    assert taken.status_code == (200 if mode == "htmx" else 409)  # type: ignore[attr-defined]
    assert "Вопрос уже взял в работу другой сотрудник" in taken.text  # type: ignore[attr-defined]
    outsider = _post(
        client, f"{base}/assign", mode, csrf_token=token, user_id=str(world.other_operator.id)
    )
    assert outsider.status_code == 422  # type: ignore[attr-defined]
    session.refresh(world.question)
    assert world.question.assignee_id == world.colleague.id


def test_reclassify_to_gratitude_stops_the_clocks(
    client: TestClient, session: Session, world: World
) -> None:
    token = sign_in(client, world.operator, session)
    base = f"/questions/{world.question.id}"
    answer = _post(
        client, f"{base}/reclassify", "page", csrf_token=token, classification="gratitude"
    )
    assert answer.status_code == 303  # type: ignore[attr-defined]
    session.refresh(world.question)
    assert world.question.classification == "gratitude" and world.question.due_at is None
    timeline = client.get(base).text
    assert "Классификация изменена" in timeline and "вопрос → благодарность" in timeline


def test_the_transfer_page_lists_the_regions_institutions_by_name_and_territory(
    client: TestClient, session: Session, world: World
) -> None:
    sign_in(client, world.operator, session)
    page = client.get(f"/questions/{world.question.id}/transfer").text
    # The region's institutions, the question's own territory first; not its own.
    assert page.index("Чебаркульская ГБ") < page.index("Администрация Кунашакского района")
    assert "Школа № 3 г. Чебаркуль" not in page
    # Case-insensitive Cyrillic search, by name or territory.
    found = client.get(f"/questions/{world.question.id}/transfer", params={"q": "кунашак"}).text
    assert "Администрация Кунашакского района" in found and "Чебаркульская ГБ" not in found


def test_a_transfer_needs_a_target_and_a_reason_then_leaves_the_queue(
    client: TestClient, session: Session, world: World
) -> None:
    token = sign_in(client, world.operator, session)
    url = f"/questions/{world.question.id}/transfer"
    both = client.post(url, data={"csrf_token": token, "reason": " "})
    assert both.status_code == 422
    assert "Исправьте ошибки" in both.text and "<title>Ошибка: " in both.text
    assert "Выберите учреждение" in both.text and "Укажите причину передачи" in both.text
    kept = client.post(url, data={"csrf_token": token, "institution_id": str(world.hospital.id)})
    assert kept.status_code == 422 and f'value="{world.hospital.id}" checked' in kept.text

    done = client.post(
        url,
        data={
            "csrf_token": token,
            "institution_id": str(world.hospital.id),
            "reason": "Это вопрос к больнице",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/inbox?transferred={world.question.id}"
    session.refresh(world.question)
    assert world.question.institution_id == world.hospital.id
    entry = session.exec(
        select(TimelineEntry).where(
            TimelineEntry.question_id == world.question.id, TimelineEntry.kind == "transferred"
        )
    ).one()
    assert entry.data["reason"] == "Это вопрос к больнице"
    # The queue says where it went; the same address is silent about any other question.
    queue = client.get(done.headers["location"]).text
    assert f"Вопрос №{world.question.id} передан в «Чебаркульская ГБ»" in queue
    other = client.get(f"/inbox?transferred={world.question.id + 1000}").text
    assert "передан" not in other
    # Gone from the school: a 404 page; the hospital's operator sees it with the reason.
    assert client.get(f"/questions/{world.question.id}").status_code == 404
    other = TestClient(client.app, base_url="https://otklik.example.ru")
    sign_in(other, world.other_operator, session)
    page = other.get(f"/questions/{world.question.id}").text
    assert "Передан в другое учреждение" in page and "Это вопрос к больнице" in page


def test_the_json_api_lists_transfer_targets(
    client: TestClient, session: Session, world: World
) -> None:
    headers = auth_headers(session, world.operator)
    session.commit()
    url = f"/api/v1/questions/{world.question.id}/transfer-targets"
    listed = client.get(url, headers=headers).json()["items"]
    assert [t["name"] for t in listed] == [
        "Чебаркульская ГБ",
        "Администрация Кунашакского района",
    ]
    assert listed[0]["territory"] == "Чебаркульский городской округ"
    assert client.get(url, params={"q": "гб"}, headers=headers).json()["items"][0]["id"] == (
        world.hospital.id
    )
    # Another institution's question: 404, as everywhere in the API.
    other = auth_headers(session, world.other_operator)
    session.commit()
    assert client.get(url, headers=other).status_code == 404


def test_dismissal_offers_four_reasons_and_needs_a_comment_for_other(
    client: TestClient, session: Session, world: World
) -> None:
    token = sign_in(client, world.operator, session)
    url = f"/questions/{world.question.id}/dismiss"
    form = client.get(url).text
    for label in ("Спам", "Не вопрос", "Дубликат", "Другое"):
        assert f"<strong>{label}</strong>" in form
    none = client.post(url, data={"csrf_token": token})
    assert none.status_code == 422 and "Выберите, почему отвечать не нужно" in none.text
    other = client.post(url, data={"csrf_token": token, "reason": "other", "note": ""})
    assert other.status_code == 422 and "Опишите причину в комментарии" in other.text
    assert 'value="other" checked' in other.text
    done = client.post(url, data={"csrf_token": token, "reason": "spam"}, follow_redirects=False)
    assert done.status_code == 303
    session.refresh(world.question)
    assert world.question.status == QuestionStatus.dismissed
    page = client.get(f"/questions/{world.question.id}").text
    assert "Снят" in page and "Открыть снова" in page and "Без ответа" not in page
