"""An administrator connects a Telegram page in a real browser against the local fake
Bot API: setWebhook and getWebhookInfo are called with the page's address and the secret
shown once; the connection health loads, a test event arrives; the connection is in the
audit log. Failed deliveries and outgoing webhooks read at phone width too."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import ROOT, Server, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]

WIDE = {"width": 1366, "height": 900}
TOKEN = "5550001:AAbrowser-test-token"
CHANNEL = "-1001555000111"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def keep(page: Any, shoot: Any, name: str) -> None:
    """A screenshot for the test output and, for the README, under docs/screenshots."""
    path = shoot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(path.read_bytes())


def test_admin_connects_a_telegram_page(
    server: Server, new_page: Any, phone: Any, signed_in: Any, shoot: Any
) -> None:
    page = new_page(WIDE)
    signed_in(page, "admin", "/admin/connect")
    assert page.locator("h1").inner_text() == "Подключить страницу"
    shoot(page, "admin-connect-platforms")
    page.click("a[href='/admin/connect/telegram']")
    page.wait_for_url(re.compile(r"/admin/connect/telegram$"))
    page.click("button:has-text('Продолжить')")  # nothing filled: errors, nothing lost
    assert "Ошибка: " in page.title()
    assert page.locator(".error-summary").is_visible()
    page.select_option("#institution_id", index=1)
    page.fill("#token", TOKEN)
    page.fill("#target", CHANNEL)
    page.fill("#name", "Канал администрации (тест)")
    page.click("button:has-text('Продолжить')")
    page.wait_for_selector("h1:has-text('Проверьте данные')")
    assert TOKEN not in page.inner_text("main")  # masked on the check page
    keep(page, shoot, "admin-connect-check")
    before = len(server.platforms.calls)
    page.click("button:has-text('Подключить')")
    page.wait_for_selector("h1:has-text('Страница подключена')")
    webhook_url = page.locator("#webhook-url").inner_text().strip()
    secret = page.locator("#secret").inner_text().strip()
    assert re.fullmatch(r"http://[^/]+/webhooks/telegram/[\w-]+", webhook_url), webhook_url
    assert len(secret) >= 32
    calls = [c for c in server.platforms.calls[before:] if c.platform == "telegram"]
    methods = [c.method for c in calls]
    assert "setWebhook" in methods and "getWebhookInfo" in methods
    assert methods.index("getWebhookInfo") > methods.index("setWebhook")
    set_webhook = next(c for c in calls if c.method == "setWebhook")
    assert set_webhook.params["url"] == webhook_url
    assert set_webhook.params["secret_token"] == secret
    assert "message" in set_webhook.params["allowed_updates"]
    page.wait_for_selector("#page-health .health")
    assert "Доставка настроена" in page.inner_text("#page-health")
    shoot(page, "admin-connect-done")

    page.click("button:has-text('Отправить тестовое событие')")
    page.wait_for_selector("text=проверка подлинности пройдена")
    keep(page, shoot, "admin-connect-health")

    # The page's card loads the same health fragment, and the secret is not on it.
    page.click("a:has-text('Карточка страницы')")
    page.wait_for_selector("#page-health .health")
    assert secret not in page.content()
    assert "Отправить тестовое событие" in page.inner_text("#page-health")

    page.goto(f"{server.base}/admin/audit?action=page.connect")
    assert "Telegram: страница «Канал администрации (тест)» создана" in page.content()

    signed_in(phone, "admin", "/admin/connect/telegram")
    no_sideways_scroll(phone)
    keep(phone, shoot, "admin-connect-phone")


@pytest.mark.parametrize("path", ["/admin/failed", "/admin/subscriptions"])
def test_failed_and_subscriptions_read_on_a_phone(
    server: Server, new_page: Any, phone: Any, signed_in: Any, shoot: Any, path: str
) -> None:
    wide = new_page(WIDE)
    signed_in(wide, "admin", path)
    assert wide.locator("h1").is_visible()
    if path == "/admin/failed":
        assert "Тело запроса не удалось прочитать" in wide.content()
        wide.locator("details summary").first.click()
    else:
        assert "sed.example.ru" in wide.content()
    keep(wide, shoot, f"admin-{path.rsplit('/', 1)[1]}-desktop")
    signed_in(phone, "admin", path)
    no_sideways_scroll(phone)
    keep(phone, shoot, f"admin-{path.rsplit('/', 1)[1]}-phone")
