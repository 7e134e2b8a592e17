"""The operator's queue, /inbox: scope, order, tabs and counts, filters, paging, polling."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col

from app.auth.models import Role, User, UserInstitution
from app.directory.models import Page, Platform
from app.questions.models import Question, QuestionStatus
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import CREATED_AT, make_question, native_reply


def _sign_in(client: TestClient, user: User) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="q-(\d+)"', html)]


@pytest.fixture
def page(session: Session) -> Page:
    return make_page(session)


@pytest.fixture
def operator(session: Session, client: TestClient, page: Page) -> User:
    user = make_user(
        session, Role.operator, name="Петрова Анна", institution_ids=[page.institution_id]
    )
    session.commit()
    _sign_in(client, user)
    return user


def test_operator_sees_only_own_institutions_questions(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    mine = make_question(session, page_id=page.id)
    other = make_question(session, text="Вопрос чужому учреждению про мусор")
    session.commit()
    html = client.get("/inbox").text
    assert _ids(html) == [mine.id]
    assert other.id not in _ids(client.get("/inbox?tab=closed").text)
    assert "Вопрос чужому учреждению" not in html


def test_most_urgent_first_breached_on_top(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    # Clock: Tuesday 12:00 local. Last week's question is overdue; of today's, the
    # earlier one is due first.
    late = make_question(session, page_id=page.id, created_at=CREATED_AT - timedelta(days=7))
    early = make_question(session, page_id=page.id, created_at=CREATED_AT - timedelta(hours=1))
    recent = make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(hours=1))
    session.commit()
    html = client.get("/inbox").text
    assert _ids(html) == [late.id, early.id, recent.id]
    card = html[html.index(f'id="q-{late.id}"') :]
    assert "Просрочен" in card[:600] and "рабочего времени" in card[:600]
    overdue = client.get("/inbox?tab=overdue").text
    assert _ids(overdue) == [late.id]


def test_tabs_count_work_and_keep_thanks_apart(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    make_question(session, page_id=page.id)
    taken = make_question(session, page_id=page.id, text="Когда начнут вывозить мусор?")
    taken.assignee_id = operator.id
    taken.status = QuestionStatus.in_progress
    session.add(taken)
    thanks = make_question(session, page_id=page.id, text="Спасибо большое! 👍")
    answered = make_question(session, page_id=page.id, text="Где получить справку?")
    native_reply(session, answered, at=CREATED_AT + timedelta(minutes=30))
    session.commit()
    html = client.get("/inbox").text

    def count(title: str) -> int:
        match = re.search(title + r'\s*<span class="tabs__count[^"]*">(\d+)</span>', html)
        assert match, title
        return int(match.group(1))

    assert count("Все открытые") == 2
    assert count("Новые") == 1
    assert count("В работе") == 1
    assert count("Мои") == 1
    assert count("Не требуют ответа") == 1
    assert thanks.id not in _ids(html)
    assert _ids(client.get("/inbox?tab=no_answer").text) == [thanks.id]
    assert _ids(client.get("/inbox?tab=mine").text) == [taken.id]
    closed = client.get("/inbox?tab=closed").text
    assert _ids(closed) == [answered.id]
    assert "Отвечен" in closed
    assert "<title>(2) Очередь" in html


def test_filters_live_in_the_url(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    telegram = make_page(session, institution_id=page.institution_id, platform=Platform.telegram)
    vk_question = make_question(session, page_id=page.id, text="Когда откроют Садовую улицу?")
    tg_question = make_question(session, page_id=telegram.id, text="Где записаться в секцию?")
    session.commit()
    assert _ids(client.get("/inbox?platform=telegram").text) == [tg_question.id]
    assert _ids(client.get(f"/inbox?page={page.id}").text) == [vk_question.id]
    # Search folds case in any alphabet, on SQLite too.
    assert _ids(client.get("/inbox?q=САДОВУЮ").text) == [vk_question.id]
    html = client.get("/inbox?q=нет+такого").text
    assert _ids(html) == [] and "Ничего не найдено" in html
    # Tab links keep the filters.
    html = client.get("/inbox?platform=telegram").text
    assert 'href="/inbox?tab=new&amp;platform=telegram"' in html
    # Junk in the URL is dropped, not an error.
    assert client.get("/inbox?page=abc&tab=nope&sla=x&cursor=zzz").status_code == 200


def test_platforms_by_name_and_dismissed_reads_removed(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    question = make_question(session, page_id=page.id)
    question.status = QuestionStatus.dismissed
    session.add(question)
    session.commit()
    html = client.get("/inbox?tab=closed").text
    assert "Снят" in html and "Без ответа" not in html
    assert "ВКонтакте" in html
    assert ">vk<" not in html


def test_citizen_text_is_escaped(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    make_question(
        session,
        page_id=page.id,
        text="<script>alert('x')</script> Когда будет свет?",
        citizen_name="<b>Иван</b>",
    )
    session.commit()
    html = client.get("/inbox").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html
    assert "&lt;b&gt;Иван&lt;/b&gt;" in html


def test_cursor_pages_past_the_first_fifty(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    made = [
        make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(seconds=i))
        for i in range(53)
    ]
    session.commit()
    first = client.get("/inbox").text
    assert len(_ids(first)) == 50
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&")).text
    assert len(_ids(second)) == 3
    assert sorted(_ids(first) + _ids(second)) == sorted(q.id for q in made)


def test_poll_answers_204_until_something_changes(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    make_question(session, page_id=page.id)
    session.commit()
    html = client.get("/inbox").text
    version = re.search(r'id="queue-v" name="v" value="([^"]+)"', html)
    assert version
    poll = {"HX-Request": "true"}
    unchanged = client.get(f"/inbox?v={version.group(1)}", headers=poll)
    assert unchanged.status_code == 204
    arrived = make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(hours=1))
    session.commit()
    changed = client.get(f"/inbox?v={version.group(1)}", headers=poll)
    assert changed.status_code == 200
    assert "<html" not in changed.text and 'id="queue"' in changed.text
    assert arrived.id in _ids(changed.text)
    assert "Новых вопросов: 1" in changed.text
    assert "HX-Request" in changed.headers["vary"]
    # A minute later the SLA times are re-rendered even if nothing else changed.
    now_version = re.search(r'name="v" value="([^"]+)"', changed.text)
    assert now_version
    clock.advance(minutes=1)
    assert client.get(f"/inbox?v={now_version.group(1)}", headers=poll).status_code == 200


@pytest.mark.parametrize(
    ("headers", "full"),
    [
        ({}, True),
        ({"HX-Request": "true"}, False),
        ({"HX-Request": "true", "HX-Boosted": "true"}, True),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, True),
    ],
)
def test_full_page_or_fragment(
    client: TestClient, operator: User, headers: dict[str, str], full: bool
) -> None:
    response = client.get("/inbox?tab=new", headers=headers)
    assert response.status_code == 200
    assert ("<html" in response.text) is full
    assert 'id="queue"' in response.text


def test_empty_states_say_who_connects_pages(client: TestClient, session: Session) -> None:
    institution = make_institution(session)
    user = make_user(session, Role.operator, institution_ids=[institution.id])
    session.commit()
    _sign_in(client, user)
    html = client.get("/inbox").text
    assert "Страницы ваших учреждений ещё не подключены" in html
    assert "администратор" in html


def test_operator_without_institution_is_told_to_ask(client: TestClient, session: Session) -> None:
    institution = make_institution(session)
    user = make_user(session, Role.operator, institution_ids=[institution.id])
    # The institution was taken away from the operator later.
    session.execute(sa.delete(UserInstitution).where(col(UserInstitution.user_id) == user.id))
    session.commit()
    _sign_in(client, user)
    assert "Вам ещё не назначено учреждение" in client.get("/inbox").text


def test_api_list_keeps_its_contract(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    from tests.factories.auth import auth_headers

    question = make_question(session, page_id=page.id)
    headers = auth_headers(session, operator)
    session.commit()
    body = client.get("/api/v1/questions", headers=headers).json()
    assert set(body) == {"items", "next_cursor"}
    assert [item["id"] for item in body["items"]] == [question.id]
    assert body["items"][0]["sla"]["first_response"]["state"] == "running"
    assert isinstance(session.get(Question, question.id), Question)
