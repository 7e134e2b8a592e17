"""Platform rate limits for the outbox, shared by every worker process.

Each limited thing (a page's token, one chat) has a key and a minimum interval
between sends. The `send_rate` row of a key holds the next free moment; a sender
locks the rows of its keys (in key order, so two senders cannot deadlock), takes
the slot and moves it on. On SQLite the single writer serialises this anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.core.db import insert_ignoring
from app.outbox.models import SendRate

# Seconds between two sends on one key (docs/platforms.md).
VK_COMMUNITY_TOKEN = 1 / 20  # 20 requests/s per community token
VK_USER_TOKEN = 1 / 3  # 3 requests/s per user token
TELEGRAM_BOT = 1 / 30  # ~30 messages/s per bot overall
TELEGRAM_PRIVATE_CHAT = 1.0  # ~1 message/s per chat
TELEGRAM_GROUP = 3.0  # 20 messages/min per group
MAX_CHAT = 0.5  # 2 messages/s per chat
MAX_BOT = 1 / 30
OK_GROUP = 1 / 5  # not published; a conservative guess

_VK_USER_METHODS = frozenset({"board", "photo", "video", "market"})


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    interval: float  # seconds


def limits_for(platform: str, page_id: int, ref: Mapping[str, str]) -> list[Limit]:
    """The keys one reply is counted against."""
    if platform == "vk":
        if ref.get("method") in _VK_USER_METHODS:
            return [Limit(f"vk-user:{page_id}", VK_USER_TOKEN)]
        return [Limit(f"vk:{page_id}", VK_COMMUNITY_TOKEN)]
    if platform == "telegram":
        chat = ref.get("chat_id", "")
        per_chat = TELEGRAM_GROUP if chat.startswith("-") else TELEGRAM_PRIVATE_CHAT
        return [Limit(f"tg:{page_id}", TELEGRAM_BOT), Limit(f"tg:{page_id}:{chat}", per_chat)]
    if platform == "max":
        chat = ref.get("chat_id") or ref.get("user_id") or ref.get("post_id") or ""
        return [Limit(f"max:{page_id}", MAX_BOT), Limit(f"max:{page_id}:{chat}", MAX_CHAT)]
    if platform == "ok":
        return [Limit(f"ok:{page_id}", OK_GROUP)]
    return []


def _ensure_rows(session: Session, keys: list[str], now: datetime) -> None:
    for key in keys:
        session.execute(insert_ignoring(session, SendRate, {"key": key, "next_at": now}))


def _locked(session: Session, keys: list[str], now: datetime) -> list[SendRate]:
    _ensure_rows(session, keys, now)
    return list(
        session.exec(
            select(SendRate)
            .where(col(SendRate.key).in_(keys))
            .order_by(col(SendRate.key))
            .with_for_update()
        ).all()
    )


def reserve(
    session: Session, limits: list[Limit], now: datetime, max_wait: float
) -> tuple[datetime, bool]:
    """Take the next free slot for all `limits` if it comes within `max_wait` seconds.

    Returns (slot, taken). When taken, the caller sends at `slot`; otherwise no slot
    moved and the caller should come back at `slot`. The caller commits, at once: the
    rows stay locked until then.
    """
    if not limits:
        return now, True
    by_key = {limit.key: limit for limit in limits}
    rows = _locked(session, sorted(by_key), now)
    slot = max([now, *(row.next_at for row in rows)])
    if (slot - now).total_seconds() > max_wait:
        return slot, False
    for row in rows:
        row.next_at = slot + timedelta(seconds=by_key[row.key].interval)
        session.add(row)
    session.flush()
    return slot, True


def push_back(session: Session, limits: list[Limit], until: datetime) -> None:
    """The platform said "too many requests, retry after ...": hold every send on these keys.

    The caller commits, at once: the rows stay locked until then."""
    if not limits:
        return
    for row in _locked(session, sorted(limit.key for limit in limits), until):
        if row.next_at < until:
            row.next_at = until
            session.add(row)
    session.flush()
