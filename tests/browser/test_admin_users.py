"""The demo administrator creates an operator, the operator signs in, and both are found
in the audit log; operators and supervisors meet a 404 on the admin pages; each page of
people and access reads at desktop and phone width."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Server, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]

LOGIN = "h1.operator"


def _sign_in(page: Any, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_create_an_operator_who_signs_in_and_both_are_in_the_audit_log(
    server: Server,
    desktop: Any,
    new_page: Callable[..., Any],
    signed_in: Callable[..., Any],
    shoot: Callable[[Any, str], Any],
) -> None:
    admin = server.logins("admin")[0]
    page = signed_in(desktop, admin, "/admin/users")
    assert page.locator("h1").inner_text() == "Пользователи"
    assert page.locator(".people__item").count() >= 3
    shoot(page, "admin-users-desktop")

    page.click("text=Добавить пользователя")
    page.wait_for_url(re.compile(r"/admin/users/new$"))
    # A mistake first: nothing chosen for the operator, the page says how to fix it.
    page.fill("#login", LOGIN)
    page.check("input[name=role][value=operator]")
    page.click("button:has-text('Создать пользователя')")
    assert "Ошибка:" in page.title()
    assert page.locator(".error-summary").is_visible()
    assert "Выберите хотя бы одно учреждение" in page.locator(".error-summary").inner_text()
    assert page.input_value("#login") == LOGIN  # kept
    page.fill("#name", "Оператор Проверочный")
    page.locator("input[name=institution_ids]").first.check()
    page.check("input[name=credential][value=password]")
    page.click("button:has-text('Создать пользователя')")
    page.wait_for_load_state()
    assert f"Пользователь «{LOGIN}» создан" in page.locator("h1").inner_text()
    password = page.locator("#secret").inner_text().strip()
    assert len(password) >= 10
    shoot(page, "admin-users-created")

    # The new operator signs in in another browser and works; admin pages are a 404.
    operator_page = new_page()
    _sign_in(operator_page, server.base, LOGIN, password)
    assert operator_page.url.endswith("/inbox")
    answer = operator_page.goto(f"{server.base}/admin/users")
    assert answer is not None and answer.status == 404

    # Both events are in the audit log, with who did them.
    page.goto(f"{server.base}/admin/audit")
    entries = page.locator(".audit__item")
    first_two = entries.nth(0).inner_text() + entries.nth(1).inner_text()
    assert "Вход" in first_two and LOGIN in first_two
    page.goto(f"{server.base}/admin/audit?action=user.create")
    created = page.locator(".audit__item").first.inner_text()
    assert "Пользователь: создание" in created and admin in created and "Оператор" in created
    assert "Учреждения" in created
    shoot(page, "admin-audit-desktop")

    # The user's page: role, scope, history; the tokens page.
    page.goto(f"{server.base}/admin/users?q={LOGIN}")
    page.click("text=Оператор Проверочный")
    page.wait_for_url(re.compile(r"/admin/users/\d+$"))
    assert "Последние изменения" in page.content()
    shoot(page, "admin-user-desktop")
    page.goto(f"{server.base}/admin/tokens")
    assert page.locator("h1").inner_text() == "Токены API"
    shoot(page, "admin-tokens-desktop")


def test_operators_and_supervisors_get_404_on_admin_pages(
    server: Server, new_page: Callable[..., Any], signed_in: Callable[..., Any]
) -> None:
    for role in ("operator", "supervisor"):
        page = signed_in(new_page(), server.logins(role)[0])
        for path in ("/admin/users", "/admin/tokens", "/admin/audit", "/admin/users/1"):
            answer = page.goto(f"{server.base}{path}")
            assert answer is not None and answer.status == 404, (role, path)
            assert "Пользователи" not in page.locator("main").inner_text()


def test_people_pages_fit_a_phone(
    server: Server,
    phone: Any,
    signed_in: Callable[..., Any],
    shoot: Callable[[Any, str], Any],
) -> None:
    page = signed_in(phone, server.logins("admin")[0], "/admin/users")
    no_sideways_scroll(page)
    shoot(page, "admin-users-phone")
    page.locator(".people__name").first.click()
    page.wait_for_url(re.compile(r"/admin/users/\d+$"))
    no_sideways_scroll(page)
    shoot(page, "admin-user-phone")
    for path, name in (
        ("/admin/users/new", "admin-users-new-phone"),
        ("/admin/audit", "admin-audit-phone"),
        ("/admin/tokens", "admin-tokens-phone"),
    ):
        page.goto(f"{server.base}{path}")
        no_sideways_scroll(page)
        shoot(page, name)


def test_a_sector_supervisor_is_made_on_the_form_and_audited(
    server: Server,
    desktop: Any,
    phone: Any,
    signed_in: Callable[..., Any],
    shoot: Callable[[Any, str], Any],
) -> None:
    admin = server.logins("admin")[0]
    page = signed_in(desktop, admin, "/admin/users/new")
    page.fill("#login", "h1.education")
    page.fill("#name", "Отдел образования Проверочный")
    page.check("input[name=role][value=supervisor]")
    # A sector under an institution would mean the sector everywhere: refused, explained.
    institution = page.locator("#scope option[value^='i:']").first.get_attribute("value")
    page.select_option("#scope", institution)
    page.select_option("#sector", "education")
    page.click("button:has-text('Создать пользователя')")
    assert "Ошибка:" in page.title()
    summary = page.locator(".error-summary").inner_text()
    assert "Отрасль задаётся вместе с территорией" in summary
    assert page.input_value("#sector") == "education"  # kept for correction
    page.locator(".error-summary a[href='#sector']").click()
    assert page.evaluate("document.activeElement.id") == "sector"
    shoot(page, "admin-users-sector-error-desktop")

    region = page.locator("#scope option[value^='t:']").first.get_attribute("value")
    page.select_option("#scope", region)
    page.click("button:has-text('Создать пользователя')")
    page.wait_for_load_state()
    assert "Пользователь «h1.education» создан" in page.locator("h1").inner_text()

    page.goto(f"{server.base}/admin/users?q=h1.education")
    assert "отрасль «Образование»" in page.locator("#people").inner_text()
    page.click("text=Отдел образования Проверочный")
    page.wait_for_url(re.compile(r"/admin/users/\d+$"))
    assert page.input_value("#sector") == "education"
    shoot(page, "admin-user-sector-desktop")
    user_url = page.url

    page.goto(f"{server.base}/admin/audit?action=user.create")
    created = page.locator(".audit__item").first.inner_text()
    assert "h1.education" in created and "Отрасль" in created and "Образование" in created

    small = signed_in(phone, admin, user_url.removeprefix(server.base))
    no_sideways_scroll(small)
    assert small.locator("#sector").is_visible()
    shoot(small, "admin-user-sector-phone")
