"""The queue's cached counts and first pages (`app.questions.queue`): reused only while
the scope's mark holds, so an action, an arrival or a question leaving the queue shows
on the next request, and arrivals elsewhere do not wake a poll."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col

from app.answering import service as answering
from app.auth.models import Role, User
from app.directory.models import Page
from app.questions.models import Question
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.factories.directory import make_page
from tests.factories.questions import CREATED_AT, make_question
from tests.questions.test_views import _ids, _sign_in


def _counts(html: str) -> dict[str, int]:
    found = re.findall(r'>([^<>]+?)\s*<span class="tabs__count[^"]*">(\d+)</span>', html)
    return {title.strip(): int(n) for title, n in found}


def _version(html: str) -> str:
    match = re.search(r'id="queue-v" name="v" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.fixture
def page(session: Session) -> Page:
    return make_page(session)


@pytest.fixture
def operator(session: Session, client: TestClient, page: Page) -> User:
    user = make_user(session, Role.operator, institution_ids=[page.institution_id])
    session.commit()
    _sign_in(client, user)
    return user


def test_an_action_shows_at_once_within_the_minute(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    first = make_question(session, page_id=page.id)
    second = make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(minutes=5))
    session.commit()
    before = client.get("/inbox").text
    assert _counts(before)["Новые"] == 2
    assert _counts(before)["Мои"] == 0
    assert sorted(_ids(client.get("/inbox").text)) == sorted([first.id, second.id])  # again

    answering.claim(session, second, by=operator, now=clock())
    session.commit()
    after = client.get("/inbox").text  # the same minute of the frozen clock
    assert _counts(after)["Новые"] == 1
    assert _counts(after)["В работе"] == 1
    assert _counts(after)["Мои"] == 1
    assert _ids(client.get("/inbox?tab=mine").text) == [second.id]
    assert _ids(client.get("/inbox?tab=new").text) == [first.id]


def test_a_question_leaving_the_queue_leaves_the_counts_and_first_page(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    kept = make_question(session, page_id=page.id)
    gone = make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(minutes=5))
    session.commit()
    assert sorted(_ids(client.get("/inbox").text)) == sorted([kept.id, gone.id])
    # Behind the services' back, without touching updated_at: the number of open
    # questions is part of the mark, so this shows too.
    session.execute(
        sa.update(Question).where(col(Question.id) == gone.id).values(status="dismissed")
    )
    session.commit()
    html = client.get("/inbox").text
    assert _ids(html) == [kept.id]
    assert _counts(html)["Все открытые"] == 1


def test_a_poll_sleeps_through_arrivals_elsewhere_and_wakes_for_its_own(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    make_question(session, page_id=page.id)
    session.commit()
    version = _version(client.get("/inbox").text)
    poll = {"HX-Request": "true"}

    make_question(session, text="Вопрос другому учреждению", created_at=CREATED_AT)
    session.commit()
    assert client.get(f"/inbox?v={version}", headers=poll).status_code == 204

    arrived = make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(hours=1))
    session.commit()
    woken = client.get(f"/inbox?v={version}", headers=poll)
    assert woken.status_code == 200
    assert arrived.id in _ids(woken.text)
    assert "Новых вопросов: 1" in woken.text


def test_a_change_without_updated_at_shows_within_a_minute(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    question = make_question(session, page_id=page.id)
    session.commit()
    assert _counts(client.get("/inbox").text)["Мои"] == 0
    session.execute(
        sa.update(Question).where(col(Question.id) == question.id).values(assignee_id=operator.id)
    )
    session.commit()
    # The cached counts stand for the rest of the minute (the documented bound)...
    assert _counts(client.get("/inbox").text)["Мои"] == 0
    clock.advance(minutes=1)
    # ...and no longer.
    assert _counts(client.get("/inbox").text)["Мои"] == 1


def test_each_user_has_their_own_counts(
    client: TestClient, session: Session, page: Page, operator: User
) -> None:
    make_question(session, page_id=page.id)
    other_page = make_page(session)
    make_question(session, page_id=other_page.id)
    make_question(session, page_id=other_page.id, created_at=CREATED_AT + timedelta(minutes=1))
    colleague = make_user(session, Role.operator, institution_ids=[other_page.institution_id])
    session.commit()
    assert _counts(client.get("/inbox").text)["Все открытые"] == 1
    client.cookies.clear()
    _sign_in(client, colleague)
    assert _counts(client.get("/inbox").text)["Все открытые"] == 2


def test_the_api_open_list_follows_changes_and_pages_on(
    client: TestClient, session: Session, page: Page, operator: User, clock: FrozenClock
) -> None:
    from tests.factories.auth import auth_headers

    questions = [
        make_question(session, page_id=page.id, created_at=CREATED_AT + timedelta(minutes=n))
        for n in range(3)
    ]
    headers = auth_headers(session, operator)
    session.commit()

    def listed(**params: str) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in {"status": "open", **params}.items())
        return client.get(f"/api/v1/questions?{query}", headers=headers).json()

    assert [i["id"] for i in listed()["items"]] == [q.id for q in questions]
    first = listed(limit="2")
    assert [i["id"] for i in first["items"]] == [q.id for q in questions[:2]]
    rest = listed(limit="2", cursor=first["next_cursor"])
    assert [i["id"] for i in rest["items"]] == [questions[2].id]

    answering.set_status(
        session, questions[0], answering.StatusChange.waiting_citizen, by=operator, now=clock()
    )
    session.commit()
    statuses = {i["id"]: i["status"] for i in listed()["items"]}
    assert statuses[questions[0].id] == "waiting_citizen"
    session.execute(
        sa.update(Question).where(col(Question.id) == questions[1].id).values(status="closed")
    )
    session.commit()
    assert {i["id"] for i in listed()["items"]} == {questions[0].id, questions[2].id}
