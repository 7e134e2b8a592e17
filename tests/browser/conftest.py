"""One real server with the demo region, one Debian Chromium, for every browser test.

`server` starts `otklik serve` on a fresh SQLite database seeded by `otklik demo` (the
same commands `make run` uses, through tests/hashing.py: cheap password hashes) and
knows the printed users. `browser` launches
/usr/bin/chromium through Playwright (never a downloaded browser). `desktop` and `phone`
give a new page at 1280 px and 390 px width; `signed_in(page, login)` signs a page in.
Screenshots: `shoot(page, name)` writes PNGs under the test output directory
(OTKLIK_TEST_OUTPUT, default `var/test-output/browser`), and a failed test leaves a
screenshot of every page it had open.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.platforms import FakePlatforms

CHROMIUM = "/usr/bin/chromium"
# `otklik`, with the tests' cheap password hashing (signing in is not what is tested here).
OTKLIK = [sys.executable, "-m", "tests.hashing"]
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("OTKLIK_TEST_OUTPUT", ROOT / "var" / "test-output" / "browser"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    base: str
    env: dict[str, str]
    users: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # login -> pw, role, scope
    # The platforms' APIs the server talks to: a local fake that records every call.
    platforms: FakePlatforms = field(default_factory=FakePlatforms)

    def password(self, login: str) -> str:
        return self.users[login][0]

    def logins(self, role: str) -> list[str]:
        return [login for login, (_, r, _) in self.users.items() if r == role]

    def cli(self, *args: str) -> str:
        """Runs `otklik <args>` against this server's database."""
        done = subprocess.run(
            [*OTKLIK, *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    platforms = FakePlatforms()
    platforms.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=f"sqlite:///{tmp / 'otklik.db'}",
        OTKLIK_VAR_DIR=str(tmp / "var"),
        OTKLIK_LOG_LEVEL="WARNING",
        OTKLIK_VK_API_URL=platforms.url("vk"),
        OTKLIK_TELEGRAM_API_URL=platforms.url("telegram"),
        OTKLIK_OK_API_URL=platforms.url("ok"),
        OTKLIK_MAX_API_URL=platforms.url("max"),
        OTKLIK_WORKER_INTERVAL="1",
    )
    run = OTKLIK
    subprocess.run([*run, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    demo = subprocess.run(
        [*run, "demo"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    users = {
        m.group(1): (m.group(2), m.group(3), m.group(4).strip())
        for m in re.finditer(r"^\s+(\S+) / (\S+) / (\S+) / (.*)$", demo, re.MULTILINE)
    }
    assert "admin" in users, demo
    port = _free_port()
    process = subprocess.Popen([*run, "serve", "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield Server(base, env, users, platforms)
    finally:
        process.terminate()
        process.wait(timeout=20)
        platforms.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("browser tests need Debian's chromium at /usr/bin/chromium (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
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
        yield chromium
        chromium.close()


@pytest.fixture
def open_pages(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    pages: list[Any] = []
    yield pages
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for n, page in enumerate(pages):
            with contextlib.suppress(Exception):  # a closed page has nothing to show
                page.screenshot(path=str(_path(f"FAILED-{request.node.name}-{n}")), full_page=True)
    for page in pages:
        page.context.close()


def _new_page(browser: Any, pages: list[Any], viewport: dict[str, int]) -> Any:
    context = browser.new_context(
        locale="ru-RU", timezone_id="Asia/Yekaterinburg", viewport=viewport
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    pages.append(page)
    return page


@pytest.fixture
def desktop(browser: Any, open_pages: list[Any]) -> Any:
    return _new_page(browser, open_pages, DESKTOP)


@pytest.fixture
def phone(browser: Any, open_pages: list[Any]) -> Any:
    return _new_page(browser, open_pages, PHONE)


@pytest.fixture
def new_page(browser: Any, open_pages: list[Any]) -> Callable[[dict[str, int]], Any]:
    return lambda viewport=DESKTOP: _new_page(browser, open_pages, viewport)


@pytest.fixture
def signed_in(server: Server) -> Callable[..., Any]:
    def sign_in(page: Any, login: str, next_path: str = "/inbox") -> Any:
        page.goto(f"{server.base}/login?next={next_path}")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", server.password(login))
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    return sign_in


def _path(name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"


@pytest.fixture
def shoot() -> Callable[[Any, str], Path]:
    """Saves a full-page screenshot under the test output directory and returns its path."""

    def take(page: Any, name: str) -> Path:
        path = _path(name)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def no_sideways_scroll(page: Any) -> None:
    """Asserts the page is no wider than its viewport (a phone never scrolls sideways)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url} is {width}px wide at {viewport}px"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
