"""The supervisors' dashboard in a real browser: the ЦУР drills down from the region to a
question, a municipal supervisor sees only their subtree, at desktop and phone width.

Questions come the real way: signed VK webhooks posted to the demo server's pages of
institutions no other browser test works with, some answered by the page itself on VK
(a page reply), some left unanswered past their deadline. The dashboard's figures then
come from what processing, the SLA clocks and the watcher made of them.
"""

from __future__ import annotations

import itertools
import json
import re
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
from tests.browser.conftest import ROOT, Server, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]

SCREENSHOTS = ROOT / "docs" / "screenshots"
KINDERGARTEN = "МБДОУ «Детский сад № 15 г. Чебаркуля»"
SPORT = "МБУ «Спортивная школа Чебаркуля»"
MIASS = "МАУ ДК «Прометей»"
VILLAGE = "Варламовский сельский дом культуры"
# (institution, days back, answered after this many minutes or None, text)
TRAFFIC = [
    (KINDERGARTEN, 3, 50, "Когда откроют запись в младшую группу на следующий год?"),
    (KINDERGARTEN, 9, None, "Почему в группе третий день холодно? Батареи еле тёплые."),
    (SPORT, 2, 30, "Есть ли набор в секцию лыжных гонок для детей 8 лет?"),
    (MIASS, 5, None, "Будет ли в ДК новогодний концерт для пенсионеров?"),
    (VILLAGE, 4, 120, "Во сколько начинается кружок народного танца по субботам?"),
    (VILLAGE, 1, None, "<b>Жирный</b> вопрос: когда починят крыльцо дома культуры?"),
]
_ids = itertools.count(int(time.time()) % 100000 * 100 + 50)


@dataclass
class Region:
    questions: int
    territories: dict[str, int]


def _post(server: Server, page: Any, obj: dict[str, Any]) -> None:
    body = {
        "type": "wall_reply_new",
        "event_id": f"dashboard-test-{next(_ids)}",
        "v": "5.199",
        "group_id": int(page.external_id),
        "secret": page.secret,
        "object": obj,
    }
    response = httpx.post(
        f"{server.base}/webhooks/vk/{page.key}", content=json.dumps(body).encode(), timeout=10
    )
    assert response.status_code == 200 and response.text == "ok", response.text


def _comment(page: Any, n: int, post: int, author: int, text: str, at: datetime) -> dict[str, Any]:
    return {
        "id": n,
        "from_id": author,
        "date": int(at.timestamp()),
        "text": text,
        "post_id": post,
        "owner_id": -int(page.external_id),
        "post_owner_id": -int(page.external_id),
        "parents_stack": [],
        "attachments": [],
    }


@pytest.fixture(scope="module")
def region(server: Server) -> Region:
    engine = sa.create_engine(server.env["OTKLIK_DATABASE_URL"])
    with engine.connect() as conn:
        pages = dict(
            conn.execute(
                sa.text(
                    "SELECT i.name, min(p.id) FROM page p"
                    " JOIN institution i ON i.id = p.institution_id"
                    " WHERE p.platform = 'vk' GROUP BY i.name"
                )
            ).all()
        )
        territories = dict(conn.execute(sa.text("SELECT name, id FROM territory")).all())
        before = conn.execute(sa.text("SELECT count(*) FROM question")).scalar_one()
    settings = Settings(
        database_url=server.env["OTKLIK_DATABASE_URL"], var_dir=Path(server.env["OTKLIK_VAR_DIR"])
    )
    secrets = dict(load_pages(engine, Cipher(settings.resolved_secret_key())))
    now = datetime.now(UTC)
    answered = 0
    for i, (institution, days, after, text) in enumerate(TRAFFIC):
        page = secrets[pages[institution]]
        n, post = next(_ids), 2000 + i
        asked = now - timedelta(days=days, hours=1)
        _post(server, page, _comment(page, n, post, 512400000 + n % 100000, text, asked))
        if after is not None:
            reply = _comment(
                page,
                next(_ids),
                post,
                -int(page.external_id),
                "Здравствуйте! Ответили вам в личных сообщениях.",
                asked + timedelta(minutes=after),
            )
            _post(server, page, {**reply, "reply_to_comment": n, "parents_stack": [n]})
            answered += 1
    for _ in range(400):  # processing runs in the server's worker (a loaded CI box: slow)
        with engine.connect() as conn:
            _, settled = conn.execute(
                sa.text(
                    "SELECT count(*), count(first_response_at) FROM question WHERE id > "
                    "(SELECT coalesce(max(id), 0) FROM question) - :n"
                ),
                {"n": len(TRAFFIC)},
            ).one()
            total = conn.execute(sa.text("SELECT count(*) FROM question")).scalar_one()
        if total >= before + len(TRAFFIC) and settled >= answered:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the posted webhooks did not become answered questions")
    engine.dispose()
    return Region(questions=len(TRAFFIC), territories=territories)


def _keep(page: Any, shoot: Any, name: str) -> None:
    """A screenshot for the test output and, for the README, under docs/screenshots."""
    path = shoot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(path.read_bytes())


def _figure(page: Any, label: str) -> Any:
    return page.locator(".figure a", has=page.locator(".figure__label", has_text=label))


def _listed(page: Any) -> int:
    lead = page.locator(".page-lead").inner_text()
    match = re.match(r"([\d\u00a0 ]+)", lead)
    assert match, lead
    return int(re.sub(r"\D", "", match.group(1)))


def test_the_regional_centre_drills_down_to_a_question(
    server: Server, region: Region, desktop: Any, signed_in: Any, shoot: Any
) -> None:
    page = signed_in(desktop, "cur", "/dashboard")
    page.wait_for_url("**/dashboard")
    assert page.locator("h1").inner_text() == "Сводка: Челябинская область"
    chart = page.locator("svg.chart--wide")
    assert chart.is_visible()
    assert chart.locator("polyline").count() == 3
    # The chart's numbers are in the table beside it and add up to the headline.
    received = _figure(page, "Получено вопросов").locator(".figure__value").inner_text()
    rows = page.locator(".trend__table tbody tr").all()
    by_day = sum(int(r.locator("td").first.inner_text().replace("\u00a0", "")) for r in rows)
    assert int(received.replace("\u00a0", "")) == by_day >= region.questions
    assert "Первый ответ в срок" in page.locator(".figures").inner_text()
    _keep(page, shoot, "dashboard-region-desktop")

    # A figure is a link to exactly the questions it counts.
    _figure(page, "Получено вопросов").click()
    page.wait_for_url("**/dashboard/questions?*figure=questions*")
    assert _listed(page) == by_day
    # A citizen's markup is text.
    assert page.locator(".qlist b").count() == 0
    page.go_back()
    page.wait_for_url("**/dashboard")

    # Region → municipality → settlement → institution → page → question.
    page.locator(".rank").get_by_role("link", name="Чебаркульский муниципальный район").click()
    page.wait_for_url(f"**territory_id={region.territories['Чебаркульский муниципальный район']}*")
    crumbs = page.locator(".crumbs li").all_inner_texts()
    assert crumbs == ["Челябинская область", "Чебаркульский муниципальный район"]
    assert "Территории: хуже всех сверху" in page.content()
    page.locator(".rank").get_by_role("link", name="Варламовское сельское поселение").click()
    page.wait_for_url(f"**territory_id={region.territories['Варламовское сельское поселение']}*")
    assert "Учреждения: хуже всех сверху" in page.content()
    _keep(page, shoot, "dashboard-settlement-desktop")
    page.locator(".rank").get_by_role("link", name=VILLAGE).click()
    page.wait_for_url("**institution_id=*")
    assert page.locator(".crumbs li").last.inner_text() == VILLAGE
    assert "Страницы: хуже всех сверху" in page.content()
    page.locator(".rank tbody th a").first.click()
    page.wait_for_url("**/dashboard/questions?*page_id=*")
    # The two posted here, and any the other browser tests' simulated traffic added.
    listed = _listed(page)
    assert listed >= 2
    # The export streams with its progress in the page; names can be masked.
    page.get_by_label("Скрыть имена жителей").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Скачать CSV").click()
    saved = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert saved.count("\r\n") == listed + 1  # the header and every question listed
    assert "кружок народного танца" in saved
    assert "Готово" in page.locator(".export-progress").inner_text()
    assert f"Выгружено строк: {listed}" in page.locator(".export-progress").inner_text()
    # Masked: neither a citizen's VK id nor the surname VK gave (the fake names them
    # «Мария Иванова-NNN») is in the file, only initials or «скрыто».
    assert ";Житель;" in saved and "id 5124" not in saved and "Иванова-" not in saved
    _keep(page, shoot, "dashboard-questions-desktop")
    page.locator(".qlist a", has_text="кружок народного танца").click()
    page.wait_for_url("**/questions/*")
    assert "кружок народного танца" in page.content()
    # Read-only for a supervisor: no reply box, no actions.
    assert "только для чтения" in page.content()
    assert page.locator("textarea").count() == 0
    # The URL held the whole state: back returns to the institution's dashboard.
    page.go_back()
    page.go_back()
    page.wait_for_url("**/dashboard?*institution_id=*")
    assert page.locator(".crumbs li").last.inner_text() == VILLAGE

    # The other municipality: its institutions ranked, the overdue question counted.
    page.goto(
        f"{server.base}/dashboard?territory_id={region.territories['Чебаркульский городской округ']}"
    )
    assert "Учреждения: хуже всех сверху" in page.content()
    assert page.locator(".rank").get_by_role("link", name=KINDERGARTEN).is_visible()
    _figure(page, "Просрочено сейчас").click()
    page.wait_for_url("**figure=overdue_now*")
    assert "Почему в группе третий день холодно?" in page.content()


def test_a_municipal_supervisor_sees_only_their_subtree_on_a_phone(
    server: Server, region: Region, phone: Any, signed_in: Any, shoot: Any
) -> None:
    page = signed_in(phone, "chebarkul", "/dashboard")
    page.wait_for_url("**/dashboard")
    assert page.locator("h1").inner_text() == "Сводка: Чебаркульский городской округ"
    assert page.locator("svg.chart--narrow").is_visible()
    assert not page.locator("svg.chart--wide").is_visible()
    text = page.content()
    assert KINDERGARTEN in text and SPORT in text
    assert MIASS not in text and "Миасс" not in text
    no_sideways_scroll(page)
    _keep(page, shoot, "dashboard-municipality-phone")
    page.get_by_role("link", name="Прошлая неделя").click()
    page.wait_for_url("**period=last_week*")
    assert page.locator('.period-picker a[aria-current="true"]').inner_text() == "Прошлая неделя"
    no_sideways_scroll(page)
    # A neighbour's territory is not found, whichever way it is asked for.
    miass = region.territories["Миасский городской округ"]
    for path in ("/dashboard", "/dashboard/questions", "/dashboard/questions.csv"):
        response = page.request.get(f"{server.base}{path}?territory_id={miass}")
        assert response.status == 404, path
    page.goto(f"{server.base}/dashboard?territory_id={miass}")
    assert "не найден" in page.content().lower()
    # The supervisor's queue: every institution of the subtree, named on each card, counted.
    page.goto(f"{server.base}/inbox?tab=open")
    cards = page.locator("#queue .qcard").all_inner_texts()
    assert any(KINDERGARTEN in c for c in cards)
    assert not any(MIASS in c for c in cards)
    no_sideways_scroll(page)
