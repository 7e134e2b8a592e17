"""Realistic webhook traffic for the demo pages: bodies and headers, correctly signed.

Used by `otklik simulate` (over HTTP, against a running instance) and by
`otklik demo --history-days N` (through the same ingestion path, in process).
The texts and names come from :mod:`app.demo.phrases`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.demo import deliveries as d
from app.demo.deliveries import Citizen, Delivery
from app.demo.phrases import FOLLOW_UPS, NAMES, OTHER, QUESTIONS, REACTIONS, REPLIES, THANKS
from webhooks import PageSecrets

__all__ = ["Delivery", "TrafficGenerator", "business_moments"]


@dataclass
class _PageState:
    page: PageSecrets
    post: int = 1000
    counter: int = 1
    # (thread id, citizen id, citizen's object id) of questions not yet answered
    open: list[tuple[str, str, str]] = field(default_factory=list)


class TrafficGenerator:
    """Makes deliveries for a set of pages, with a realistic mix of events."""

    def __init__(self, pages: list[PageSecrets], seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._pages = [
            _PageState(p) for p in pages if p.platform in ("vk", "telegram", "ok", "max")
        ]
        if not self._pages:
            raise ValueError("no VK, Telegram, OK or MAX pages to send traffic to")
        self._sent: list[Delivery] = []

    def next(self, at: datetime) -> Delivery:
        """One delivery: a question mostly; follow-ups, page replies, edits and duplicates too."""
        roll = self._rng.random()
        if roll < 0.04 and self._sent:
            old = self._rng.choice(self._sent[-50:])  # a platform's re-delivery
            return Delivery(old.platform, old.key, old.body, old.headers, at)
        state = self._rng.choice(self._pages)
        if roll < 0.30 and state.open:
            delivery = self._page_reply(state, at)
        elif roll < 0.38 and state.open:
            delivery = self._follow_up(state, at)
        else:
            delivery = self._question(state, at)
        self._sent.append(delivery)
        return delivery

    # --- event builders ---

    def _citizen(self) -> Citizen:
        first, last = self._rng.choice(NAMES)
        return Citizen(str(self._rng.randint(100_000_000, 899_999_999)), first, last)

    def _text(self) -> str:
        if self._rng.random() < 0.1:
            return self._rng.choice(THANKS + REACTIONS + OTHER)
        return self._rng.choice(QUESTIONS)

    def _question(self, s: _PageState, at: datetime) -> Delivery:
        s.counter += 1
        citizen = self._citizen()
        text = self._text()
        platform = s.page.platform
        private = self._rng.random() < 0.35
        body: dict[str, object]
        if platform == "vk":
            if private:
                body = d.vk_message(s.page, citizen.id, s.counter, text, at)
                s.open.append((f"msg:{citizen.id}", citizen.id, str(s.counter)))
            else:
                if self._rng.random() < 0.3:
                    s.post += 1
                body = d.vk_comment(s.page, citizen.id, s.post, s.counter, text, at)
                s.open.append((str(s.post), citizen.id, str(s.counter)))
        elif platform == "telegram":
            if private:
                body = d.tg_private(self._update_id(), citizen, s.counter, text, at)
            else:
                body = d.tg_comment(s.page, self._update_id(), citizen, s.counter, s.post, text, at)
                s.open.append((f"{d.tg_group(s.page)}:{s.post}", citizen.id, str(s.counter)))
        elif platform == "ok":
            body = d.ok_message(citizen, s.counter, text, at)
        else:
            body = d.max_message(citizen, s.counter, text, at)
        return d.signed(s.page, body, at)

    def _follow_up(self, s: _PageState, at: datetime) -> Delivery:
        thread, citizen, _ = self._rng.choice(s.open)
        s.counter += 1
        text = self._rng.choice(FOLLOW_UPS)
        if s.page.platform == "vk" and thread.startswith("msg:"):
            body = d.vk_message(s.page, citizen, s.counter, text, at)
        elif s.page.platform == "vk":
            body = d.vk_comment(s.page, citizen, int(thread), s.counter, text, at)
        else:
            return self._question(s, at)
        return d.signed(s.page, body, at)

    def _page_reply(self, s: _PageState, at: datetime) -> Delivery:
        thread, citizen, object_id = s.open.pop(self._rng.randrange(len(s.open)))
        s.counter += 1
        text = self._rng.choice(REPLIES["default"])
        if s.page.platform == "vk" and thread.startswith("msg:"):
            body = d.vk_page_message(s.page, citizen, s.counter, text, at)
        elif s.page.platform == "vk":
            body = d.vk_page_comment(
                s.page, citizen, int(thread), s.counter, int(object_id), text, at
            )
        elif s.page.platform == "telegram":
            root = int(thread.split(":")[1])
            who = Citizen(citizen, "Гражданин", "")
            body = d.tg_page_reply(
                s.page, self._update_id(), who, s.counter, root, int(object_id), text, at
            )
        else:
            return self._question(s, at)
        return d.signed(s.page, body, at)

    def _update_id(self) -> int:
        return self._rng.randint(100_000_000, 999_999_999)


def business_moments(days: int, per_day: int, end: datetime, rng: random.Random) -> list[datetime]:
    """Citizens write mostly in the daytime, more on weekdays: moments over the last `days`."""
    moments: list[datetime] = []
    for day in range(days, 0, -1):
        start = end - timedelta(days=day)
        weekday = (start + timedelta(hours=5)).weekday()
        count = per_day if weekday < 5 else per_day // 2
        for _ in range(count):
            hour = min(23.9, max(0.0, rng.gauss(13, 4)))  # local hours, UTC+5
            moments.append(
                start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour - 5)
            )
    return sorted(m for m in moments if m < end)
