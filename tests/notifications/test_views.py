"""The bell and the notifications list: unread first, only one's own, each alert opens
its question and is read on the way."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Notification, Role, User
from app.notifications import service
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import make_question

HTMX = {"HX-Request": "true"}


def _sign_in(client: TestClient, user: User) -> str:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text)
    assert found
    return found.group(1)


def _alert(
    session: Session,
    user: User,
    clock: FrozenClock,
    text: str,
    *,
    question_id: int | None = None,
    kind: str = "sla.breached",
    minutes_ago: int = 0,
    read: bool = False,
) -> Notification:
    at = clock() - timedelta(minutes=minutes_ago)
    item = Notification(
        user_id=user.id,  # type: ignore[arg-type]
        question_id=question_id,
        kind=kind,
        text=text,
        dedupe_key=f"test:{text}",
        created_at=at,
        read_at=at if read else None,
        delivered_at=at,
    )
    session.add(item)
    session.flush()
    return item


def _world(session: Session) -> tuple[User, User, int]:
    institution = make_institution(session)
    page = make_page(session, institution_id=institution.id)
    question = make_question(session, page_id=page.id)
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    other = make_user(session, Role.operator, institution_ids=[institution.id])
    assert question.id is not None
    return operator, other, question.id


def test_the_bell_counts_unread_alerts_and_is_a_link_without_js(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    operator, other, question_id = _world(session)
    _sign_in(client, operator)
    page = client.get("/inbox")
    # Every page: a plain link that htmx fills in once shown and every 60 s.
    assert 'id="bell" href="/notifications"' in page.text
    assert 'hx-get="/notifications/bell"' in page.text
    assert 'hx-trigger="load, every 60s' in page.text
    empty = client.get("/notifications/bell", headers=HTMX)
    assert "bell__count" not in empty.text
    for n in range(3):
        _alert(session, operator, clock, f"Срок ответа нарушен {n}", question_id=question_id)
    _alert(session, operator, clock, "прочитано", read=True)
    _alert(session, other, clock, "чужое")
    bell = client.get("/notifications/bell", headers=HTMX)
    assert bell.status_code == 200
    assert '<span class="bell__count" aria-hidden="true">3</span>' in bell.text
    assert "3\u00a0непрочитанных" in bell.text
    # The refreshed bell polls on, but does not reload itself at once in a loop.
    assert 'hx-trigger="every 60s' in bell.text and "load" not in bell.text
    # Opened without htmx, the bell's address is the list.
    plain = client.get("/notifications/bell", follow_redirects=False)
    assert plain.headers["location"] == "/notifications"


def test_the_list_shows_unread_first_and_only_ones_own(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    operator, other, question_id = _world(session)
    _alert(session, operator, clock, "Старое прочитанное", read=True, minutes_ago=1)
    _alert(
        session,
        operator,
        clock,
        f"Срок ответа нарушен: первый ответ. Вопрос №{question_id}: «Где <b>справка</b>?» "
        f"https://otklik.example.ru/questions/{question_id}",
        question_id=question_id,
        minutes_ago=30,
    )
    _alert(session, operator, clock, "Вам передан вопрос", kind="transferred", minutes_ago=5)
    _alert(session, other, clock, "Уведомление коллеги")
    _sign_in(client, operator)
    page = client.get("/notifications")
    assert page.status_code == 200
    text = page.text
    assert "<title>(2) Уведомления" in text
    assert "Уведомление коллеги" not in text
    # Unread (newest first) before read.
    assert text.index("Вам передан вопрос") < text.index("Срок ответа нарушен")
    assert text.index("Срок ответа нарушен") < text.index("Старое прочитанное")
    # The citizen's words are text; the trailing address is the card's link instead.
    assert "&lt;b&gt;справка&lt;/b&gt;" in text and "<b>справка</b>" not in text
    assert "https://otklik.example.ru/questions/" not in text
    assert "Срок нарушен" in text and "Передан вам" in text


def test_opening_an_alert_reads_it_and_goes_to_its_question(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    operator, _, question_id = _world(session)
    item = _alert(session, operator, clock, "Скоро срок", question_id=question_id)
    _sign_in(client, operator)
    answer = client.get(f"/notifications/{item.id}/open", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/questions/{question_id}"
    session.refresh(item)
    assert item.read_at == clock()
    assert service.unread_count(session, operator) == 0


def test_marking_one_and_all_read(client: TestClient, session: Session, clock: FrozenClock) -> None:
    operator, _, question_id = _world(session)
    first = _alert(session, operator, clock, "первое", question_id=question_id)
    _alert(session, operator, clock, "второе")
    _alert(session, operator, clock, "третье")
    token = _sign_in(client, operator)
    refused = client.post(f"/notifications/{first.id}/read", data={})
    assert refused.status_code == 403
    answer = client.post(
        f"/notifications/{first.id}/read", data={"csrf_token": token}, follow_redirects=False
    )
    assert answer.headers["location"] == "/notifications?done=read"
    assert service.unread_count(session, operator) == 2
    client.post("/notifications/read-all", data={"csrf_token": token})
    assert service.unread_count(session, operator) == 0
    page = client.get("/notifications?done=all")
    assert "Все уведомления прочитаны." in page.text
    assert "Новых уведомлений нет" in page.text


def test_another_users_alert_is_as_missing_as_none(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    operator, other, _ = _world(session)
    theirs = _alert(session, other, clock, "чужое")
    token = _sign_in(client, operator)
    foreign = client.post(f"/notifications/{theirs.id}/read", data={"csrf_token": token})
    missing = client.post("/notifications/987654321/read", data={"csrf_token": token})
    assert foreign.status_code == missing.status_code == 404
    assert client.get(f"/notifications/{theirs.id}/open").status_code == 404
    session.refresh(theirs)
    assert theirs.read_at is None


def test_reading_an_alert_in_otklik_spares_the_morning_digest(
    session: Session, clock: FrozenClock
) -> None:
    operator, _, _ = _world(session)
    waiting = _alert(session, operator, clock, "ночное")
    waiting.delivered_at = None
    waiting.deliver_after = clock() + timedelta(hours=10)
    session.add(waiting)
    session.flush()
    service.mark_all_read(session, operator, clock())
    session.refresh(waiting)
    assert waiting.delivered_at == clock()


def test_read_alerts_page_on(session: Session, clock: FrozenClock) -> None:
    operator, _, _ = _world(session)
    for n in range(service.READ_PAGE + 5):
        _alert(session, operator, clock, f"прочитанное {n}", read=True)
    first = service.listing(session, operator)
    assert len(first.read) == service.READ_PAGE and first.older is not None
    rest = service.listing(session, operator, older_than=first.older)
    assert len(rest.read) == 5 and rest.older is None
    assert {n.id for n in first.read}.isdisjoint({n.id for n in rest.read})
