"""An operator of the demo works the queue in a real browser, at desktop and phone width.

Questions come in the real way: signed VK webhooks posted to the demo server's pages
(verify, store, process, triage, SLA), some dated days back so that they are overdue.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.core.config import Settings
from app.core.crypto import Cipher
from app.demo.simulate import load_pages
from tests.browser.conftest import Server, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]

SCRIPT = "<script>window.__xss = 1</script> Когда починят крышу спортзала?"
FOREIGN = "Чужой вопрос: когда откроют каток в парке Гагарина?"
THANKS = "Спасибо большое за быстрый ответ! 👍"
QUESTIONS = [
    # (days back, hours back, text)
    (8, 0, "Почему до сих пор не вывезли мусор с контейнерной площадки на ул. Мира?"),
    (6, 2, "Когда будет готов график приёма документов на лето?"),
    (0, 7, "Подскажите, где посмотреть расписание кружков на следующую неделю?"),
    (0, 3, "Как записать ребёнка в секцию плавания? Какие нужны документы?"),
    (0, 1, "Когда дадут горячую воду в доме 12 по ул. Ленина?"),
    (0, 0, SCRIPT),
]
_ids = itertools.count(int(time.time()) % 100000 * 100)


@dataclass
class Queue:
    login: str
    vk_page_ids: list[int]
    total: int


def _engine(server: Server) -> sa.Engine:
    return sa.create_engine(server.env["OTKLIK_DATABASE_URL"])


def _post_vk(server: Server, page: Any, text: str, at: datetime) -> None:
    n = next(_ids)
    body = {
        "type": "wall_reply_new",
        "event_id": f"queue-test-{n}",
        "v": "5.199",
        "group_id": int(page.external_id),
        "secret": page.secret,
        "object": {
            "id": n,
            "from_id": 512300000 + n % 100000,
            "date": int(at.timestamp()),
            "text": text,
            "post_id": 1000 + n % 50,
            "owner_id": -int(page.external_id),
            "post_owner_id": -int(page.external_id),
            "parents_stack": [],
            "attachments": [],
        },
    }
    response = httpx.post(
        f"{server.base}/webhooks/vk/{page.key}", content=json.dumps(body).encode(), timeout=10
    )
    assert response.status_code == 200 and response.text == "ok", response.text


@pytest.fixture(scope="module")
def queue(server: Server) -> Queue:
    engine = _engine(server)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT u.login, p.id FROM user u"
                " JOIN user_institution ui ON ui.user_id = u.id"
                " JOIN page p ON p.institution_id = ui.institution_id"
                " WHERE u.role = 'operator' AND p.platform = 'vk' ORDER BY u.id, p.id"
            )
        ).all()
        before = conn.execute(sa.text("SELECT count(*) FROM question")).scalar_one()
    by_login: dict[str, list[int]] = {}
    for login, page_id in rows:
        by_login.setdefault(login, []).append(page_id)
    operators = [login for login in server.logins("operator") if login in by_login]
    assert len(operators) >= 2, by_login
    login, other = operators[0], operators[1]
    settings = Settings(
        database_url=server.env["OTKLIK_DATABASE_URL"], var_dir=Path(server.env["OTKLIK_VAR_DIR"])
    )
    secrets = dict(load_pages(engine, Cipher(settings.resolved_secret_key())))
    now = datetime.now(UTC)
    mine = by_login[login]
    for i, (days, hours, text) in enumerate(QUESTIONS):
        page = secrets[mine[i % len(mine)]]
        _post_vk(server, page, text, now - timedelta(days=days, hours=hours, minutes=5))
    _post_vk(server, secrets[mine[0]], THANKS, now - timedelta(minutes=2))
    _post_vk(server, secrets[by_login[other][0]], FOREIGN, now - timedelta(minutes=1))
    expected = before + len(QUESTIONS) + 2
    for _ in range(100):  # processing runs in the server's worker
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM question")).scalar_one() >= expected:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the posted webhooks did not become questions")
    engine.dispose()
    return Queue(login=login, vk_page_ids=mine, total=len(QUESTIONS))


def _card_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#queue .qcard__text").all_inner_texts()]


def test_operator_works_the_queue_on_a_desktop(
    server: Server, queue: Queue, desktop: Any, signed_in: Any, shoot: Any
) -> None:
    page = signed_in(desktop, queue.login)
    assert page.url.endswith("/inbox")
    texts = _card_texts(page)
    for _, _, text in QUESTIONS:
        assert any(t.startswith(text[:40]) for t in texts), (text, texts)
    # Only the operator's institutions: another's question is nowhere, not even by URL.
    assert not any(FOREIGN[:20] in t for t in texts)
    # The citizen's <script> is text on the page, and it never ran.
    assert any(SCRIPT in t for t in texts)
    assert page.evaluate("window.__xss") is None
    # Most urgent first: the overdue ones lead, with an SLA tag in words.
    first = page.locator("#queue .qcard").first
    assert "Просрочен" in first.inner_text()
    assert "рабочего времени" in first.inner_text()
    assert page.title().startswith("(")
    shoot(page, "inbox-desktop")

    # Tabs: a link each, the URL holds the state, the back button returns.
    page.get_by_role("link", name="Не требуют ответа").click()
    page.wait_for_url("**/inbox?tab=no_answer")
    assert any(THANKS[:20] in t for t in _card_texts(page))
    shoot(page, "inbox-desktop-no-answer")
    page.get_by_role("link", name="Просрочены").click()
    page.wait_for_url("**/inbox?tab=overdue")
    overdue = _card_texts(page)
    assert overdue and all(
        "Просрочен" in c for c in page.locator("#queue .qcard").all_inner_texts()
    )
    count = page.locator('.tabs a[aria-current="page"] .tabs__count').inner_text()
    assert int(count) == len(overdue)
    page.go_back()
    page.wait_for_url("**/inbox?tab=no_answer")
    # The URL changes first; the page restored for it follows (a reload on a history miss).
    page.locator('.tabs a[aria-current="page"]', has_text="Не требуют").wait_for()
    assert any(THANKS[:20] in t for t in _card_texts(page))

    # Filters in the URL, shareable: another institution's id shows nothing of it.
    page.goto(f"{server.base}/inbox?page={queue.vk_page_ids[0]}&sla=breached")
    assert page.locator("#f-sla").input_value() == "breached"
    assert all("Просрочен" in c for c in page.locator("#queue .qcard").all_inner_texts())
    shoot(page, "inbox-desktop-filtered")
    page.goto(f"{server.base}/inbox?q=каток")
    assert page.locator("#queue .qcard").count() == 0
    assert "Ничего не найдено" in page.content()
    shoot(page, "inbox-desktop-empty-search")

    # Keyboard: / searches, j/k move, Enter opens the question.
    page.goto(f"{server.base}/inbox")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("плавания")
    page.keyboard.press("Enter")
    page.wait_for_url("**/inbox?q=*")
    texts = _card_texts(page)
    assert len(texts) == 1 and "плавания" in texts[0]
    page.goto(f"{server.base}/inbox")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == page.locator("#queue .qcard").first.get_attribute("href")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{focused}")


def test_operator_queue_on_a_phone(
    server: Server, queue: Queue, phone: Any, signed_in: Any, shoot: Any
) -> None:
    page = signed_in(phone, queue.login)
    assert page.locator("#queue .qcard").count() >= queue.total
    no_sideways_scroll(page)
    logout = page.get_by_role("button", name="Выйти")
    box = logout.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390 and box["y"] >= 0
    shoot(page, "inbox-phone")
    page.locator(".filters summary").click()
    page.select_option("#f-sla", "breached")
    page.get_by_role("button", name="Показать").click()
    page.wait_for_url("**sla=breached*")
    no_sideways_scroll(page)
    shoot(page, "inbox-phone-filtered")
    page.get_by_role("link", name="Мои").click()
    page.wait_for_url("**tab=mine*")
    # The filter stays on the other tab: nothing of the operator's own is overdue.
    assert "Ничего не найдено" in page.content()
    page.get_by_role("link", name="сбросьте фильтры").click()
    page.wait_for_url("**/inbox?tab=mine")
    assert "У вас нет вопросов в работе" in page.content()
    no_sideways_scroll(page)
    shoot(page, "inbox-phone-mine")
