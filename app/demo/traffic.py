"""Realistic webhook traffic for the demo pages: bodies and headers, correctly signed.

Used by `otklik simulate` (over HTTP, against a running instance) and by
`otklik demo --history-days N` (through the same ingestion path, in process).
The texts and names come from :mod:`app.demo.phrases`.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.demo.phrases import FOLLOW_UPS, NAMES, OTHER, QUESTIONS, REPLIES
from webhooks import PageSecrets
from webhooks.generic import sign


@dataclass(frozen=True, slots=True)
class Delivery:
    platform: str
    key: str
    body: bytes
    headers: dict[str, str]
    at: datetime


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

    def _citizen(self) -> tuple[str, str, str]:
        first, last = self._rng.choice(NAMES)
        return str(self._rng.randint(100_000_000, 899_999_999)), first, last

    def _text(self) -> str:
        return self._rng.choice(OTHER) if self._rng.random() < 0.1 else self._rng.choice(QUESTIONS)

    def _question(self, s: _PageState, at: datetime) -> Delivery:
        s.counter += 1
        citizen, first, last = self._citizen()
        text = self._text()
        platform = s.page.platform
        private = self._rng.random() < 0.35
        if platform == "vk":
            if private:
                body = self._vk_message(s, citizen, text, at)
                s.open.append((f"msg:{citizen}", citizen, str(s.counter)))
            else:
                if self._rng.random() < 0.3:
                    s.post += 1
                body = self._vk_envelope(
                    s,
                    "wall_reply_new",
                    {
                        "id": s.counter,
                        "from_id": int(citizen),
                        "date": int(at.timestamp()),
                        "text": text,
                        "post_id": s.post,
                        "owner_id": -int(s.page.external_id),
                        "post_owner_id": -int(s.page.external_id),
                        "parents_stack": [],
                        "attachments": [],
                    },
                )
                s.open.append((str(s.post), citizen, str(s.counter)))
        elif platform == "telegram":
            body = self._tg_message(s, citizen, first, last, text, at, private)
        elif platform == "ok":
            body = {
                "sender": {"user_id": f"user:{citizen}", "name": f"{first} {last}"},
                "recipient": {"chat_id": f"chat:C{citizen}"},
                "message": {
                    "mid": f"mid:C{citizen}.{secrets.token_hex(6)}",
                    "seq": s.counter,
                    "text": text,
                },
                "timestamp": int(at.timestamp() * 1000),
            }
        else:
            mid = f"mid.{secrets.token_hex(16)}"
            body = {
                "update_type": "message_created",
                "timestamp": int(at.timestamp() * 1000),
                "user_locale": "ru",
                "message": {
                    "sender": {
                        "user_id": int(citizen),
                        "first_name": first,
                        "last_name": last,
                        "username": None,
                        "is_bot": False,
                    },
                    "recipient": {
                        "chat_id": int(citizen) + 7_000_000_000,
                        "chat_type": "dialog",
                        "user_id": 91234567,
                    },
                    "timestamp": int(at.timestamp() * 1000),
                    "body": {"mid": mid, "seq": s.counter, "text": text, "attachments": None},
                },
            }
        return self._delivery(s, body, at)

    def _follow_up(self, s: _PageState, at: datetime) -> Delivery:
        thread, citizen, _ = self._rng.choice(s.open)
        s.counter += 1
        text = self._rng.choice(FOLLOW_UPS)
        if s.page.platform == "vk" and thread.startswith("msg:"):
            body = self._vk_message(s, citizen, text, at)
        elif s.page.platform == "vk":
            body = self._vk_envelope(
                s,
                "wall_reply_new",
                {
                    "id": s.counter,
                    "from_id": int(citizen),
                    "date": int(at.timestamp()),
                    "text": text,
                    "post_id": int(thread),
                    "owner_id": -int(s.page.external_id),
                    "parents_stack": [],
                    "attachments": [],
                },
            )
        else:
            return self._question(s, at)
        return self._delivery(s, body, at)

    def _page_reply(self, s: _PageState, at: datetime) -> Delivery:
        thread, citizen, object_id = s.open.pop(self._rng.randrange(len(s.open)))
        s.counter += 1
        text = self._rng.choice(REPLIES)
        gid = int(s.page.external_id)
        if s.page.platform == "vk" and thread.startswith("msg:"):
            body = self._vk_envelope(
                s,
                "message_reply",
                {
                    "id": s.counter,
                    "date": int(at.timestamp()),
                    "peer_id": int(citizen),
                    "from_id": -gid,
                    "text": text,
                    "out": 1,
                    "conversation_message_id": s.counter,
                    "admin_author_id": 100500,
                    "attachments": [],
                    "fwd_messages": [],
                },
            )
        elif s.page.platform == "vk":
            body = self._vk_envelope(
                s,
                "wall_reply_new",
                {
                    "id": s.counter,
                    "from_id": -gid,
                    "date": int(at.timestamp()),
                    "text": text,
                    "post_id": int(thread),
                    "owner_id": -gid,
                    "reply_to_user": int(citizen),
                    "reply_to_comment": int(object_id),
                    "parents_stack": [int(object_id)],
                    "attachments": [],
                },
            )
        elif s.page.platform == "telegram":
            group = int(thread.split(":")[0])
            body = {
                "update_id": self._update_id(),
                "message": {
                    "message_id": s.counter,
                    "message_thread_id": int(thread.split(":")[1]),
                    "from": {
                        "id": 136817688,
                        "is_bot": True,
                        "first_name": "Channel",
                        "username": "Channel_Bot",
                    },
                    "sender_chat": {
                        "id": int(s.page.external_id),
                        "title": "Канал",
                        "type": "channel",
                    },
                    "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
                    "date": int(at.timestamp()),
                    "reply_to_message": {
                        "message_id": int(object_id),
                        "message_thread_id": int(thread.split(":")[1]),
                        "from": {"id": int(citizen), "is_bot": False, "first_name": "Гражданин"},
                        "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
                        "date": int(at.timestamp()) - 600,
                        "text": "вопрос",
                    },
                    "text": text,
                },
            }
        else:
            return self._question(s, at)
        return self._delivery(s, body, at)

    # --- platform envelopes ---

    def _vk_envelope(self, s: _PageState, kind: str, obj: dict[str, object]) -> dict[str, object]:
        return {
            "type": kind,
            "event_id": secrets.token_hex(20),
            "v": "5.199",
            "group_id": int(s.page.external_id),
            "secret": s.page.secret or "",
            "object": obj,
        }

    def _vk_message(
        self, s: _PageState, citizen: str, text: str, at: datetime
    ) -> dict[str, object]:
        return self._vk_envelope(
            s,
            "message_new",
            {
                "message": {
                    "id": s.counter,
                    "date": int(at.timestamp()),
                    "peer_id": int(citizen),
                    "from_id": int(citizen),
                    "text": text,
                    "out": 0,
                    "conversation_message_id": s.counter,
                    "attachments": [],
                    "fwd_messages": [],
                },
                "client_info": {"keyboard": True, "lang_id": 0},
            },
        )

    def _update_id(self) -> int:
        return self._rng.randint(100_000_000, 999_999_999)

    def _tg_message(
        self,
        s: _PageState,
        citizen: str,
        first: str,
        last: str,
        text: str,
        at: datetime,
        private: bool,
    ) -> dict[str, object]:
        user = {
            "id": int(citizen),
            "is_bot": False,
            "first_name": first,
            "last_name": last,
            "language_code": "ru",
        }
        if private:
            return {
                "update_id": self._update_id(),
                "message": {
                    "message_id": s.counter,
                    "from": user,
                    "chat": {"id": int(citizen), "first_name": first, "type": "private"},
                    "date": int(at.timestamp()),
                    "text": text,
                },
            }
        group = int(s.page.external_id) - 1_000_000
        root = s.post
        s.open.append((f"{group}:{root}", citizen, str(s.counter)))
        return {
            "update_id": self._update_id(),
            "message": {
                "message_id": s.counter,
                "message_thread_id": root,
                "from": user,
                "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
                "date": int(at.timestamp()),
                "reply_to_message": {
                    "message_id": root,
                    "message_thread_id": root,
                    "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
                    "sender_chat": {
                        "id": int(s.page.external_id),
                        "title": "Канал",
                        "type": "channel",
                    },
                    "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
                    "date": int(at.timestamp()) - 3600,
                    "is_automatic_forward": True,
                    "text": "Новости округа: график вывоза мусора и ремонта дорог.",
                },
                "text": text,
            },
        }

    def _delivery(self, s: _PageState, body: dict[str, object], at: datetime) -> Delivery:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if s.page.platform == "telegram":
            headers["X-Telegram-Bot-Api-Secret-Token"] = s.page.secret or ""
        elif s.page.platform == "max":
            headers["X-Max-Bot-Api-Secret"] = s.page.secret or ""
        elif s.page.platform == "generic":
            headers["X-Otklik-Signature"] = sign(s.page.secret or "", raw)
        return Delivery(s.page.platform, s.page.key, raw, headers, at)


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
