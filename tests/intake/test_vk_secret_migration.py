"""Deliveries stored before intake masked VK's secret are masked by a migration."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from app.directory.models import Platform
from app.intake.models import InboundEvent
from tests.factories.directory import make_page

SECRET = "Zr7qL2vN9xKw"
MIGRATION = (
    Path(__file__).parents[2] / "migrations" / "versions" / "2026-12-06_1540_mask_vk_secrets.py"
)


def test_migration_masks_rows_stored_before(connection: sa.Connection, session: Session) -> None:
    spec = importlib.util.spec_from_file_location("mask_vk_secrets", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    page = make_page(session, platform=Platform.vk, external_id="1", secret=SECRET)
    tg = make_page(session, platform=Platform.telegram, external_id="2", secret=SECRET)
    bodies = {
        "vk-1": (page, {"type": "wall_reply_new", "secret": SECRET, "object": {"id": 1}}),
        "vk-2": (page, {"type": "message_new", "secret": SECRET, "object": {"text": "Ёж"}}),
        "vk-3": (page, {"type": "group_join", "object": {}}),
        "tg-1": (tg, {"update_id": 1, "secret": SECRET}),
    }
    for key, (owner, data) in bodies.items():
        session.add(
            InboundEvent(
                platform=owner.platform,
                page_id=owner.id or 0,
                delivery_key=key,
                body=json.dumps(data, ensure_ascii=False).encode(),
            )
        )
    session.flush()
    assert migration.mask_vk_secrets(connection, batch=2) == 2
    session.expire_all()
    stored = {e.delivery_key: json.loads(e.body) for e in session.exec(select(InboundEvent))}
    assert stored["vk-1"]["secret"] == stored["vk-2"]["secret"] == "***"
    assert stored["vk-2"]["object"] == {"text": "Ёж"}
    assert stored["vk-3"] == bodies["vk-3"][1]
    # Not VK: untouched (no other platform puts a secret in its body).
    assert stored["tg-1"]["secret"] == SECRET
