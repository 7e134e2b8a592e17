"""A real browser signs in to a real server with the credentials `otklik demo` printed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]


def test_demo_admin_signs_in_with_printed_credentials(
    server: Server, desktop: Any, shoot: Any
) -> None:
    page = desktop
    page.goto(f"{server.base}/inbox")
    assert "/login" in page.url
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Неверный логин или пароль" in page.content()
    shoot(page, "login-error")
    page.fill("input[name=password]", server.password("admin"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.base}/inbox")
    assert "Администратор системы" in page.content()
    shoot(page, "inbox-admin")
