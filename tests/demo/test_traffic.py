"""Simulated traffic is what the platforms would send: every delivery verifies and parses."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from app.demo.traffic import TrafficGenerator
from webhooks import EventKind, PageSecrets, get_adapter

PAGES = [
    PageSecrets(platform="vk", key="k-vk", external_id="218734591", secret="vk-secret"),
    PageSecrets(
        platform="telegram",
        key="k-tg",
        external_id="-1001987654321",
        secret="tg_secret",
        access_token="7012345678:AAH",
    ),
    PageSecrets(platform="ok", key="k-ok", external_id="70000001234567"),
    PageSecrets(platform="max", key="k-max", external_id="7718293401", secret="max_secret"),
]


def test_generated_deliveries_verify_and_parse() -> None:
    generator = TrafficGenerator(PAGES, seed=1)
    by_key = {p.key: p for p in PAGES}
    kinds: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    at = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    for n in range(600):
        delivery = generator.next(at + timedelta(seconds=n))
        page = by_key[delivery.key]
        adapter = get_adapter(delivery.platform)
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        adapter.verify(page, headers, delivery.body)
        keys[f"{delivery.key}:{adapter.delivery_key(delivery.body)}"] += 1
        for event in adapter.parse(page, delivery.body, delivery.at):
            kinds[event.kind] += 1
            # Platform time of the event; a re-delivery keeps its original time.
            assert event.sent_at <= at + timedelta(seconds=n)
    assert kinds[EventKind.citizen_message] > 300
    assert kinds[EventKind.page_reply] > 50
    # Some deliveries are repeated on purpose, as platforms do.
    assert any(count > 1 for count in keys.values())
