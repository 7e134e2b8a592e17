"""The test delivery of each platform passes that platform's own checks and is recorded
as ignored (no question), with a key no real delivery can have."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webhooks import EventKind, PageSecrets, Unauthentic, get_adapter
from webhooks.setup import test_delivery as make_test_delivery

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
PAGES = {
    "vk": PageSecrets("vk", "k", "218734591", secret="vk-secret"),
    "telegram": PageSecrets("telegram", "k", "-100", secret="tg_secret"),
    "max": PageSecrets("max", "k", "1", secret="max_secret"),
    "ok": PageSecrets("ok", "k", "5700"),
    "generic": PageSecrets("generic", "k", "portal", secret="generic-secret"),
}


@pytest.mark.parametrize("platform", sorted(PAGES))
def test_the_test_delivery_verifies_and_is_ignored(platform: str) -> None:
    page = PAGES[platform]
    adapter = get_adapter(platform)
    headers, body = make_test_delivery(page, 123456789, NOW)
    adapter.verify(page, headers, body)
    key = adapter.delivery_key(body)
    assert "123456789" in key or platform == "ok"
    events = adapter.parse(page, body, NOW)
    assert [e.kind for e in events] == [EventKind.ignored]
    assert adapter.ack(page, body).store
    # Another nonce, another delivery: repeated tests are not deduplicated away.
    assert adapter.delivery_key(make_test_delivery(page, 987654321, NOW)[1]) != key


def test_telegram_test_key_is_never_a_real_update_id() -> None:
    _, body = make_test_delivery(PAGES["telegram"], 804512377, NOW)
    assert get_adapter("telegram").delivery_key(body) == "-804512377"


@pytest.mark.parametrize("platform", ["vk", "telegram", "max", "generic"])
def test_a_wrong_secret_fails_the_check(platform: str) -> None:
    page = PAGES[platform]
    headers, body = make_test_delivery(page, 1, NOW)
    other = PageSecrets(platform, "k", page.external_id, secret="another-secret")
    with pytest.raises(Unauthentic):
        get_adapter(platform).verify(other, headers, body)
