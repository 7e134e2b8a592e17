"""The profile and notifications pages in a real browser: an operator renames themself and
sees the new name in the top bar, links the Telegram alert bot's section, and finds the
notifications list with its empty state; at phone width nothing scrolls sideways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Server, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]


def _operator(server: Server) -> str:
    return sorted(server.logins("operator"))[-1]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_an_operator_keeps_their_profile(
    server: Server, request: pytest.FixtureRequest, signed_in: Any, shoot: Any, width: str
) -> None:
    page = request.getfixturevalue(width)
    login = _operator(server)
    signed_in(page, login, "/profile")
    page.wait_for_url("**/profile")
    assert page.get_by_role("heading", name="Профиль").is_visible()
    assert page.get_by_label("Часовой пояс").is_visible()
    shoot(page, f"profile-{width}")
    no_sideways_scroll(page)

    new_name = f"Смирнова Е. В. ({width})"
    page.get_by_label("Имя").fill(new_name)
    page.get_by_role("button", name="Сохранить").click()
    page.locator(".topbar__name", has_text="Смирнова").wait_for()
    assert page.get_by_label("Имя").input_value() == new_name

    # A weak new password is refused with the reason next to the field, nothing saved.
    page.get_by_label("Текущий пароль").fill("not my password")
    page.get_by_label("Новый пароль", exact=True).fill("1")
    page.get_by_label("Новый пароль ещё раз").fill("1")
    page.get_by_role("button", name="Сменить пароль").click()
    page.locator(".error-summary").wait_for()
    shoot(page, f"profile-{width}-error")

    page.goto(f"{server.base}/notifications")
    assert page.get_by_role("heading", name="Уведомления").is_visible()
    shoot(page, f"notifications-{width}")
    no_sideways_scroll(page)
