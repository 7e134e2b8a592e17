"""Logs never carry the platform credentials that travel in request URLs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest

from app.core.logs import redact, setup_logging

BOT_TOKEN = "7788990011:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OK_TOKEN = "tkn1Qy7bXkKs2pLm9aVf0"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO")
    out = io.StringIO()
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    yield out
    root.handlers[:], level = saved
    root.setLevel(level)


def test_platform_calls_leave_no_token_in_the_logs(logs: io.StringIO) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    client.post(f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage", json={})
    client.get("https://api.ok.ru/fb.do", params={"access_token": OK_TOKEN, "sig": "abc"})
    logging.getLogger("otklik.outbox").warning(
        "sending failed: %s", f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"
    )
    logging.getLogger("otklik.outbox").error(
        "failed", extra={"fields": {"url": f"https://api.ok.ru/fb.do?access_token={OK_TOKEN}"}}
    )
    try:
        raise RuntimeError(f"https://api.ok.ru/fb.do?method=x&access_token={OK_TOKEN}")
    except RuntimeError:
        logging.getLogger("otklik.outbox").exception("crashed")
    err = logs.getvalue()
    assert "sending failed" in err and "crashed" in err  # the app's own lines are kept
    assert BOT_TOKEN not in err
    assert OK_TOKEN not in err
    assert "HTTP Request" not in err  # httpx's per-request INFO lines are silenced


def test_redact_masks_only_the_credential() -> None:
    assert redact(f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage 502") == (
        "POST https://api.telegram.org/bot***/sendMessage 502"
    )
    assert redact(f"GET /fb.do?method=a&access_token={OK_TOKEN}&sig=9f") == (
        "GET /fb.do?method=a&access_token=***&sig=***"
    )
    assert redact("обычный текст без секретов") == "обычный текст без секретов"
