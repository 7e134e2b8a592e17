"""A real browser signs in to a real server with the credentials `otklik demo` printed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sqlite_run,
]
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    tmp = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=f"sqlite:///{tmp / 'otklik.db'}",
        OTKLIK_VAR_DIR=str(tmp / "var"),
        OTKLIK_LOG_LEVEL="WARNING",
    )
    run = [sys.executable, "-m", "app.cli"]
    subprocess.run([*run, "migrate"], env=env, check=True, capture_output=True)
    demo = subprocess.run(
        [*run, "demo"], env=env, check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"^\s+admin / (\S+) / admin", demo, re.MULTILINE)
    assert match, demo
    port = _free_port()
    process = subprocess.Popen([*run, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base, "admin", match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_demo_admin_signs_in_with_printed_credentials(
    server: tuple[str, str, str], tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("browser tests need Debian's chromium at /usr/bin/chromium (make browser)")
    from playwright.sync_api import sync_playwright

    base, login, password = server
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(locale="ru-RU")
        page.goto(f"{base}/inbox")
        assert "/login" in page.url
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "Неверный логин или пароль" in page.content()
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/inbox")
        assert page.locator("h1").inner_text() == "Очередь вопросов"
        assert "Администратор системы" in page.content()
        page.screenshot(path=str(tmp_path / "inbox.png"))
        browser.close()
