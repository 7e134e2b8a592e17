"""Signed platform deliveries stored as intake stores them, for tests that process a
page's traffic end to end (order, waits, held writes)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.demo import deliveries as d
from app.directory import service as directory_service
from app.directory.models import Platform
from app.intake.writer import Delivery, DeliveryWriter
from tests.factories.directory import cipher, make_page
from webhooks import PageSecrets


def vk_page(engine: sa.Engine) -> tuple[int, PageSecrets]:
    """A committed VK page: its id, and its secrets to sign deliveries with."""
    with Session(engine) as session:
        page = make_page(session, platform=Platform.vk)
        session.commit()
        assert page.id is not None
        return page.id, directory_service.page_secrets(page, cipher())


def store_vk(
    engine: sa.Engine, page_id: int, page: PageSecrets, bodies: Iterable[dict[str, Any]]
) -> None:
    """Store these VK callback bodies, signed, as pending deliveries of the page."""
    now = datetime.now(UTC)
    DeliveryWriter(engine).write_now(
        [Delivery("vk", page_id, b["event_id"], d.signed(page, b, now).body, now) for b in bodies]
    )
