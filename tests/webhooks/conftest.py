"""Fixtures for the pure adapter tests: payload files and a scripted platform API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

PAYLOADS = Path(__file__).parent / "payloads"
# When the tests' deliveries were received and stored: the time of what a payload leaves
# undated (a VK deletion, a non-message update), later than every time in the payloads.
RECEIVED = datetime(2025, 10, 14, 12, 0, 5, tzinfo=UTC)


@pytest.fixture
def payload() -> Callable[[str, str], bytes]:
    """Raw bytes of tests/webhooks/payloads/<platform>/<name>.json."""

    def load(platform: str, name: str) -> bytes:
        return (PAYLOADS / platform / f"{name}.json").read_bytes()

    return load


class FakeApi:
    """An httpx transport that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: list[httpx.Response | Exception | Callable[[httpx.Request], Any]] = []

    def reply(
        self,
        status: int = 200,
        json: object = None,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> None:
        if text is not None:
            self._answers.append(httpx.Response(status, text=text, headers=headers))
        else:
            self._answers.append(httpx.Response(status, json=json, headers=headers))

    def fail(self, error: Exception) -> None:
        self._answers.append(error)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    def form(self, index: int = -1) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.requests[index].content.decode(), keep_blank_values=True))

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def client(api: FakeApi) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(api.handle), timeout=5) as http:
        yield http
