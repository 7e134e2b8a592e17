"""Pages work under the Content-Security-Policy: no violation, no script error, htmx alive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.test_question import SCHOOL_OPERATOR, VkPage, vk  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_run]

PAGES = ["/inbox", "/dashboard", "/notifications", "/profile", "/admin"]
# Every administration section and the dashboard's list: no inline style anywhere.
MORE_PAGES = [
    "/inbox?tab=all",
    "/dashboard/questions",
    *(
        f"/admin/{section}"
        for section in (
            "directory",
            "connect",
            "import",
            "policies",
            "calendars",
            "rules",
            "categories",
            "canned",
            "users",
            "users/new",
            "tokens",
            "audit",
            "subscriptions",
            "failed",
        )
    ),
]


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{page.url}: {message.text}")
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    return problems


def test_pages_and_api_docs_run_under_the_policy(
    server: Server,
    vk: VkPage,  # noqa: F811
    desktop: Any,
    new_page: Callable[..., Any],
    signed_in: Callable[..., Any],
    shoot: Callable[[Any, str], Path],
) -> None:
    problems = _watch(desktop)  # a list each page appends to as events arrive
    signed_in(desktop, "admin")
    for path in PAGES:
        response = desktop.goto(f"{server.base}{path}")
        assert response is not None and response.status < 400, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        desktop.wait_for_load_state("networkidle")
        # htmx is loaded and has eval off; the bell was loaded by it (a request, no eval).
        assert desktop.evaluate("window.htmx && htmx.config.allowEval") is False, path
        assert desktop.locator("#bell[data-when-visible]").count() == 1, path
        # htmx injects no <style> of its own (includeIndicatorStyles is off).
        assert desktop.locator("head style").count() == 0, path
    for path in MORE_PAGES:
        response = desktop.goto(f"{server.base}{path}")
        assert response is not None and response.status < 400, path
        assert "style-src 'self';" in response.headers["content-security-policy"]
        desktop.wait_for_load_state("networkidle")
        assert desktop.locator("[style]").count() == 0, path
    # An operator's queue and a question page (the reply form, the thread's poll).
    operator = new_page()
    problems += _watch(operator)
    question_id = vk.ask("Когда откроется каток у школы? Проверка политики безопасности.")
    signed_in(operator, SCHOOL_OPERATOR)
    operator.locator(f"#queue #q-{question_id}").click()
    operator.wait_for_load_state("networkidle")
    assert operator.url.endswith(f"/questions/{question_id}")
    assert operator.locator("form textarea").count() >= 1
    operator.goto(f"{server.base}/questions/{question_id}/transfer")
    operator.wait_for_load_state("networkidle")
    assert operator.locator("[style]").count() == 0
    desktop.goto(f"{server.base}/api/docs")
    desktop.locator(".swagger-ui .info .title").wait_for(timeout=15000)
    assert "Otklik API" in desktop.locator(".swagger-ui .info .title").inner_text()
    shoot(desktop, "api-docs-under-csp")
    assert not problems, "\n".join(problems)
