"""The dashboard's pages: scope, every figure's link lists exactly the questions it
counts, the per-question exports (streamed, formulas neutralised) and the weekly report."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from app.auth.models import Role
from app.core.config import Settings
from app.reports.periods import PERIODS
from tests.answering.web import sign_in
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.reports import world

DASHBOARD = {"period": "custom", "from": "2026-03-01", "to": "2026-03-31"}
FORMULA = '=HYPERLINK("http://evil.example","Нажмите") когда починят дорогу?'


def _figure_links(html: str) -> dict[str, str]:
    """Each headline figure's label and the URL it links to."""
    found = re.findall(
        r'<a href="(/dashboard/questions\?[^"]+)"><span class="figure__label">([^<]+)</span>', html
    )
    return {label: unescape(href) for href, label in found}


def _listed(client: TestClient, href: str) -> int:
    page = client.get(href)
    assert page.status_code == 200, page.text
    match = re.search(r'<p class="page-lead">([\d\u00a0]+)', page.text)
    assert match, page.text
    return int(match.group(1).replace("\u00a0", ""))


def test_every_figure_links_to_the_questions_it_counts(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    sign_in(client, w["boss"], session)
    page = client.get("/dashboard", params={**DASHBOARD, "territory_id": w["region"].id})
    assert page.status_code == 200, page.text
    assert "Сводка: Область" in page.text
    assert '<svg class="chart chart--wide"' in page.text
    links = _figure_links(page.text)
    expected = {
        "Получено вопросов": 7,
        "Первый ответ в срок": 3,
        "С ответом": 4,
        "Снято без ответа": 1,
        "Просрочено сейчас": 2,
        "Скоро срок": 0,
    }
    for label, n in expected.items():
        assert _listed(client, links[label]) == n, label
    # The ranking drills down to a municipality, whose ranking is its institutions.
    town = client.get("/dashboard", params={**DASHBOARD, "territory_id": w["town_a"].id})
    assert town.status_code == 200
    assert "Учреждения: хуже всех сверху" in town.text
    assert re.search(rf'<a href="/dashboard\?[^"]*territory_id={w["region"].id}', town.text)
    school = client.get("/dashboard", params={**DASHBOARD, "institution_id": w["school"].id})
    assert "Страницы: хуже всех сверху" in school.text


def test_a_municipal_supervisor_sees_only_their_subtree(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    supervisor = make_user(session, Role.supervisor, territory_id=w["town_a"].id)
    sign_in(client, supervisor, session)
    own = client.get("/dashboard", params=DASHBOARD)
    assert own.status_code == 200
    assert "Сводка: Город А" in own.text
    assert "Больница" not in own.text
    for path in ("/dashboard", "/dashboard/questions", "/dashboard/questions.csv"):
        assert client.get(path, params={"territory_id": w["town_b"].id}).status_code == 404
        assert client.get(path, params={"institution_id": w["clinic"].id}).status_code == 404
    assert client.get("/dashboard", params={"territory_id": 999999}).status_code == 404


def test_question_exports_neutralise_formulas(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    world.question(session, w["clinic"].id, text=FORMULA)
    clock.now = world.local(20, 12)
    sign_in(client, w["boss"], session)
    params = {
        "figure": "questions",
        "territory_id": w["region"].id,
        "from": "2026-03-01T00:00:00+05:00",
        "to": "2026-04-01T00:00:00+05:00",
    }
    exported = client.get("/dashboard/questions.csv", params=params)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 8
    texts = [r["Текст"] for r in rows]
    assert "'" + FORMULA in texts
    assert not any(t.startswith(("=", "+", "-", "@")) for t in texts)
    assert {r["Житель"] for r in rows} == {"Ирина Смирнова"}
    masked = client.get("/dashboard/questions.csv", params={**params, "mask": "1"})
    lines = list(csv.DictReader(io.StringIO(masked.content.decode("utf-8-sig")), delimiter=";"))
    assert {r["Житель"] for r in lines} == {"И. С."}
    assert "Смирнова" not in masked.content.decode("utf-8-sig")
    moved = [r for r in rows if r["Учреждение"] == "Администрация"]
    assert moved[0]["Получен"] == "10.03.2026 10:00"  # local time of the territory
    assert moved[0]["Первый ответ за, раб. мин"] == "420"
    book = client.get("/dashboard/questions.xlsx", params=params)
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    cells = list(sheet.iter_rows(min_row=3))
    assert len(cells) == 8
    text_cells = [row[-1] for row in cells]
    assert all(c.data_type == "s" for c in text_cells)
    assert "'" + FORMULA in [c.value for c in text_cells]


def test_weekly_report(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(16, 9)  # Monday after the week of 9–15 March
    sign_in(client, w["boss"], session)
    response = client.get("/dashboard/weekly.xlsx", params={"territory_id": w["region"].id})
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    summary = list(book["Итоги"].iter_rows(values_only=True))
    assert summary[1][0] == "Период: 09.03.2026 – 15.03.2026 (МСК+2)"
    figures = {row[0]: row[1] for row in summary[3:]}
    assert figures["Получено вопросов"] == 7
    assert figures["Доля в срок"] == 0.6
    ranking = list(book["Рейтинг"].iter_rows(values_only=True))
    assert [r[1] for r in ranking[2:]] == ["Город А", "Город Б"]
    breaches = list(book["Нарушения"].iter_rows(values_only=True))
    assert len(breaches) - 2 == 2  # the late answer and the unanswered one


def test_every_period_renders(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    clock.now = world.local(20, 12)
    sign_in(client, w["boss"], session)
    for period in ("week", "last_week", "30d", "month", "quarter", "year"):
        page = client.get("/dashboard", params={"period": period})
        assert page.status_code == 200, page.text
        current = re.search(r'<a href="[^"]*" aria-current="true">([^<]+)</a>', page.text)
        assert current, period
        assert current.group(1) == PERIODS[period]
    # A custom period ending before it starts is an error in words, not a 500.
    wrong = client.get(
        "/dashboard", params={"period": "custom", "from": "2026-03-10", "to": "2026-03-01"}
    )
    assert wrong.status_code == 200
    assert "Конец периода раньше начала" in wrong.text
    # A period with no question says so in words, not with a dash for a duration.
    empty = client.get(
        "/dashboard", params={"period": "custom", "from": "2020-01-01", "to": "2020-01-07"}
    )
    assert empty.status_code == 200
    assert "рабочего времени; ответов за период нет" in empty.text
    assert "9 из 10 — до —" not in empty.text
