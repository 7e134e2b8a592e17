"""The question page /questions/{id}: what it shows, to whom, and replies from it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import Role
from app.core.config import Settings
from app.questions.models import OutboxItem, OutboxStatus, QuestionStatus
from tests.answering.web import HTMX, World, sign_in
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.factories.questions import follow_up, make_question
from tests.outbox.outbox_helpers import FakePlatform, items_of, run, vk_ok


@pytest.fixture(params=["page", "htmx"])
def mode(request: pytest.FixtureRequest) -> str:
    """View tests run twice: as a full page and as an htmx fragment (style.md)."""
    return str(request.param)


def test_the_page_shows_the_thread_timeline_sla_and_reply_box(
    client: TestClient, session: Session, world: World, mode: str
) -> None:
    sign_in(client, world.operator, session)
    headers = HTMX if mode == "htmx" else {}
    page = client.get(f"/questions/{world.question.id}", headers=headers)
    assert page.status_code == 200
    html = page.text
    assert ("<html" in html) == (mode == "page")
    assert 'id="question"' in html
    assert "Когда отремонтируют дорогу на ул. Садовой?" in html
    assert "Ирина Смирнова" in html
    # The timeline in words, the SLA stages and the policy, the reply box with its limit.
    assert "Вопрос поступил" in html and "Классификация" in html
    assert "Первый ответ" in html and "рабочего времени" in html
    assert f'action="/questions/{world.question.id}/reply"' in html
    assert "Не длиннее 9" in html  # VK: one message of up to 9 000 characters
    assert 'name="csrf_token"' in html
    # Times in the territory's zone (Yekaterinburg, UTC+5): 06:00 UTC is 11:00 there.
    assert "11:00" in html
    assert page.headers.get("vary", "").lower().count("hx-request") == 1


def test_a_citizens_script_is_shown_as_text(
    client: TestClient, session: Session, world: World
) -> None:
    question = make_question(
        session,
        institution_id=world.school.id,
        text="<script>alert('x')</script> Когда будет ремонт?",
        citizen_name="<b>Хакер</b>",
    )
    session.commit()
    sign_in(client, world.operator, session)
    html = client.get(f"/questions/{question.id}").text
    assert "<script>alert" not in html and "<b>Хакер</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;Хакер&lt;/b&gt;" in html


def test_another_institutions_question_is_a_404_page(
    client: TestClient, session: Session, world: World
) -> None:
    token = sign_in(client, world.other_operator, session)
    page = client.get(f"/questions/{world.question.id}")
    assert page.status_code == 404
    assert "Не найдено" in page.text and "Садовой" not in page.text
    # Its actions are 404s too, not 403s that would confirm it exists.
    claim = client.post(
        f"/questions/{world.question.id}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert claim.status_code == 404
    assert client.get("/questions/999999").status_code == 404


def test_a_supervisor_sees_the_question_read_only(
    client: TestClient, session: Session, world: World
) -> None:
    supervisor = make_user(
        session, Role.supervisor, login="curator", territory_id=world.school.territory_id
    )
    session.commit()
    token = sign_in(client, supervisor, session)
    html = client.get(f"/questions/{world.question.id}").text
    assert "Садовой" in html and "только для чтения" in html
    assert "/reply" not in html and "Взять себе" not in html and "/transfer" not in html
    refused = client.post(
        f"/questions/{world.question.id}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert client.get(f"/questions/{world.question.id}/transfer").status_code == 403


def test_a_reply_is_queued_then_published_with_its_link(
    client: TestClient,
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    world: World,
    mode: str,
) -> None:
    token = sign_in(client, world.operator, session)
    qid = world.question.id
    answer = client.post(
        f"/questions/{qid}/reply",
        data={
            "csrf_token": token,
            "text": "Ирина, здравствуйте! Ремонт в мае.",
            "seen_response_id": "0",
        },
        headers=HTMX if mode == "htmx" else {},
        follow_redirects=False,
    )
    if mode == "htmx":
        assert answer.status_code == 200 and answer.headers["hx-trigger"] == "question-changed"
        html = answer.text
        assert "<html" not in html
    else:
        assert answer.status_code == 303
        assert answer.headers["location"].endswith(f"/questions/{qid}?done=reply")
        html = client.get(answer.headers["location"]).text
    assert "В очереди на публикацию" in html and "Ответ поставлен в очередь" in html
    # While a reply waits, the thread polls for its state.
    assert f'hx-get="/questions/{qid}/thread"' in html

    clock.advance(seconds=5)
    fake = FakePlatform([vk_ok({"comment_id": 9195, "parents_stack": [9187]})])
    assert run(connection, settings, clock, fake) == 1
    session.expire_all()
    polled = client.get(f"/questions/{qid}/thread", headers=HTMX).text
    assert "Опубликован" in polled and "wall-218734591_1542?reply=9195" in polled
    assert 'hx-swap-oob="true"' in polled and "Отвечен" in polled
    assert f'hx-get="/questions/{qid}/thread"' not in polled  # settled: polling stops


def test_a_retried_reply_shows_the_reason_and_a_failed_one_can_be_retried(
    client: TestClient,
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    world: World,
) -> None:
    token = sign_in(client, world.operator, session)
    qid = world.question.id
    client.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": token, "text": "Ответ", "seen_response_id": "0"},
        follow_redirects=False,
    )

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    run(connection, settings, clock, FakePlatform([unreachable]))
    session.expire_all()
    html = client.get(f"/questions/{qid}").text
    assert "В очереди на публикацию" in html
    assert "Последняя попытка не удалась" in html and "не удалось соединиться" in html

    # The platform refuses for good: the error in Russian and «Повторить».
    (item,) = items_of(session, world.question)
    item.status = OutboxStatus.failed
    item.error_code, item.error_message = "token_invalid", "ВКонтакте не принимает ключ доступа."
    session.add(item)
    session.commit()
    html = client.get(f"/questions/{qid}").text
    assert "Ошибка: не опубликован" in html and "ВКонтакте не принимает ключ доступа." in html
    retry = client.post(
        f"/questions/{qid}/outbox/{item.id}/retry",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert retry.status_code == 303
    session.expire_all()
    assert session.get(OutboxItem, item.id).status == OutboxStatus.pending  # type: ignore[union-attr]


def test_a_refused_reply_keeps_the_draft_with_an_error_summary(
    client: TestClient, session: Session, world: World, mode: str
) -> None:
    token = sign_in(client, world.operator, session)
    qid = world.question.id
    headers = HTMX if mode == "htmx" else {}
    empty = client.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": token, "text": "   "},
        headers=headers,
    )
    assert empty.status_code == 422
    assert "Исправьте ошибки" in empty.text and "Напишите текст ответа" in empty.text
    if mode == "page":
        assert "<title>Ошибка: " in empty.text
    interim = client.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": token, "text": "Разбираемся", "interim": "1", "expected_date": ""},
        headers=headers,
    )
    assert interim.status_code == 422
    assert "Укажите, когда будет окончательный ответ" in interim.text
    assert ">Разбираемся</textarea>" in interim.text and "checked" in interim.text
    assert session.exec(select(OutboxItem).where(OutboxItem.question_id == qid)).first() is None


def test_an_interim_reply_takes_the_promised_date_in_the_territorys_zone(
    client: TestClient, session: Session, world: World
) -> None:
    token = sign_in(client, world.operator, session)
    answer = client.post(
        f"/questions/{world.question.id}/reply",
        data={
            "csrf_token": token,
            "text": "Разбираемся, ответим до пятницы.",
            "interim": "1",
            "expected_date": "2026-03-13",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    (item,) = session.exec(select(OutboxItem).where(OutboxItem.question_id == world.question.id))
    assert item.payload["interim"] is True
    assert item.payload["expected_at"] == "2026-03-13T18:00:00+05:00"


def test_when_a_colleague_answered_first_the_draft_is_kept_and_they_are_named(
    client: TestClient, session: Session, clock: FrozenClock, world: World
) -> None:
    token = sign_in(client, world.operator, session)
    qid = world.question.id
    # The page Anna opened showed no response yet.
    assert 'name="seen_response_id" value="0"' in client.get(f"/questions/{qid}").text
    # Meanwhile Olga answers from her own browser.
    other = TestClient(client.app, base_url="https://otklik.example.ru")
    other_token = sign_in(other, world.colleague, session)
    other.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": other_token, "text": "Ответ Ольги", "seen_response_id": "0"},
    )
    answer = client.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": token, "text": "Мой черновик", "seen_response_id": "0"},
    )
    assert answer.status_code == 409
    assert "Пока вы писали, на вопрос ответили: Ольга Сидорова." in answer.text
    assert ">Мой черновик</textarea>" in answer.text
    assert 'name="force" value="1"' in answer.text and "Всё равно отправить" in answer.text
    items = session.exec(select(OutboxItem).where(OutboxItem.question_id == qid)).all()
    assert len(items) == 1
    # «Всё равно отправить» sends it.
    forced = client.post(
        f"/questions/{qid}/reply",
        data={"csrf_token": token, "text": "Мой черновик", "seen_response_id": "0", "force": "1"},
        follow_redirects=False,
    )
    assert forced.status_code == 303


def test_edits_deletions_and_follow_ups_are_in_the_thread(
    client: TestClient, session: Session, clock: FrozenClock, world: World
) -> None:
    question = world.question
    follow_up(session, question, at=question.created_at + timedelta(minutes=5), text="Алло?")
    session.commit()
    sign_in(client, world.operator, session)
    html = client.get(f"/questions/{question.id}").text
    assert html.index("Садовой") < html.index("Алло?")


def test_the_canned_response_comes_filled_in_with_and_without_js(
    client: TestClient, session: Session, world: World
) -> None:
    from app.answering.models import CannedResponse

    canned = CannedResponse(
        institution_id=world.school.id,
        title="Приветствие",
        text="{{citizen_name}}, здравствуйте! {{institution}} ответит до {{expected_date}}.",
    )
    session.add(canned)
    session.commit()
    sign_in(client, world.operator, session)
    qid = world.question.id
    page = client.get(f"/questions/{qid}?canned={canned.id}")
    assert ">Ирина, здравствуйте! Школа № 3 г. Чебаркуль ответит до {{expected_date}}." in page.text
    box = client.get(
        f"/questions/{qid}/canned",
        params={"canned": canned.id, "text": "Черновик", "expected_date": "2026-03-20"},
        headers=HTMX,
    )
    assert box.status_code == 200 and box.text.startswith("<textarea")
    assert (
        "Черновик\n\nИрина, здравствуйте! Школа № 3 г. Чебаркуль ответит до 20.03.2026." in box.text
    )
    no_js = client.get(
        f"/questions/{qid}/canned", params={"canned": canned.id}, follow_redirects=False
    )
    assert no_js.status_code == 303 and no_js.headers["location"].endswith(
        f"/questions/{qid}?canned={canned.id}#reply"
    )


def test_a_question_that_cannot_be_answered_through_otklik_says_so(
    client: TestClient, session: Session, world: World
) -> None:
    question = world.question
    question.status = QuestionStatus.withdrawn
    session.add(question)
    session.commit()
    sign_in(client, world.operator, session)
    html = client.get(f"/questions/{question.id}").text
    assert "Отклик не сможет опубликовать ответ" in html
    assert f'action="/questions/{question.id}/reply"' not in html


def test_a_form_without_the_csrf_token_is_refused(
    client: TestClient, session: Session, world: World
) -> None:
    sign_in(client, world.operator, session)
    answer = client.post(f"/questions/{world.question.id}/claim", data={}, follow_redirects=False)
    assert answer.status_code == 403
