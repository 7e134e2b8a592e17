"""Webhook deliveries as the platforms send them: bodies and headers, correctly signed.

Pure builders, one per kind of platform event the demo makes (a citizen's comment or
message, its edit or deletion, the page's own reply). Used by the simulated traffic
(:mod:`app.demo.traffic`) and the demo's history (:mod:`app.demo.history`); the shapes
follow the payloads in tests/webhooks/payloads.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhooks import PageSecrets
from webhooks.generic import sign

# A Telegram channel's discussion group, as the demo numbers it.
TG_GROUP_OFFSET = 1_000_000
# VK's id of the administrator who answers as the community in private messages.
VK_ADMIN_ID = 100500


@dataclass(frozen=True, slots=True)
class Delivery:
    platform: str
    key: str
    body: bytes
    headers: dict[str, str]
    at: datetime


@dataclass(frozen=True, slots=True)
class Citizen:
    id: str
    first: str
    last: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def signed(page: PageSecrets, body: dict[str, Any], at: datetime) -> Delivery:
    """The delivery of `body` to `page` with the headers its platform authenticates."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if page.platform == "telegram":
        headers["X-Telegram-Bot-Api-Secret-Token"] = page.secret or ""
    elif page.platform == "max":
        headers["X-Max-Bot-Api-Secret"] = page.secret or ""
    elif page.platform == "generic":
        headers["X-Otklik-Signature"] = sign(page.secret or "", raw)
    return Delivery(page.platform, page.key, raw, headers, at)


# --- VK -----------------------------------------------------------------------------------


def vk_envelope(page: PageSecrets, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": secrets.token_hex(20),
        "v": "5.199",
        "group_id": int(page.external_id),
        "secret": page.secret or "",
        "object": obj,
    }


def vk_comment(
    page: PageSecrets,
    citizen: str,
    post: int,
    comment_id: int,
    text: str,
    at: datetime,
    *,
    kind: str = "wall_reply_new",
) -> dict[str, Any]:
    """A citizen's comment under the page's post (`kind` wall_reply_edit: its edit)."""
    owner = -int(page.external_id)
    return vk_envelope(
        page,
        kind,
        {
            "id": comment_id,
            "from_id": int(citizen),
            "date": int(at.timestamp()),
            "text": text,
            "post_id": post,
            "owner_id": owner,
            "post_owner_id": owner,
            "parents_stack": [],
            "attachments": [],
        },
    )


def vk_comment_deleted(
    page: PageSecrets, citizen: str, post: int, comment_id: int
) -> dict[str, Any]:
    owner = -int(page.external_id)
    return vk_envelope(
        page,
        "wall_reply_delete",
        {"owner_id": owner, "id": comment_id, "deleter_id": int(citizen), "post_id": post},
    )


def vk_page_comment(
    page: PageSecrets,
    citizen: str,
    post: int,
    comment_id: int,
    answers: int,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """The community's own reply to comment `answers`, written natively in VK."""
    gid = int(page.external_id)
    return vk_envelope(
        page,
        "wall_reply_new",
        {
            "id": comment_id,
            "from_id": -gid,
            "date": int(at.timestamp()),
            "text": text,
            "post_id": post,
            "owner_id": -gid,
            "reply_to_user": int(citizen),
            "reply_to_comment": answers,
            "parents_stack": [answers],
            "attachments": [],
        },
    )


def vk_message(
    page: PageSecrets,
    citizen: str,
    message_id: int,
    text: str,
    at: datetime,
    *,
    edited: bool = False,
) -> dict[str, Any]:
    """A citizen's private message to the community (or its edit)."""
    message = {
        "id": message_id,
        "date": int(at.timestamp()),
        "peer_id": int(citizen),
        "from_id": int(citizen),
        "text": text,
        "out": 0,
        "conversation_message_id": message_id,
        "attachments": [],
        "fwd_messages": [],
    }
    if edited:
        message["update_time"] = int(at.timestamp())
        return vk_envelope(page, "message_edit", message)
    return vk_envelope(
        page, "message_new", {"message": message, "client_info": {"keyboard": True, "lang_id": 0}}
    )


def vk_page_message(
    page: PageSecrets, citizen: str, message_id: int, text: str, at: datetime
) -> dict[str, Any]:
    """The community's reply in the private conversation, written natively in VK."""
    return vk_envelope(
        page,
        "message_reply",
        {
            "id": message_id,
            "date": int(at.timestamp()),
            "peer_id": int(citizen),
            "from_id": -int(page.external_id),
            "text": text,
            "out": 1,
            "conversation_message_id": message_id,
            "admin_author_id": VK_ADMIN_ID,
            "attachments": [],
            "fwd_messages": [],
        },
    )


# --- Telegram -------------------------------------------------------------------------------


def tg_group(page: PageSecrets) -> int:
    return int(page.external_id) - TG_GROUP_OFFSET


def _tg_user(citizen: Citizen) -> dict[str, Any]:
    return {
        "id": int(citizen.id),
        "is_bot": False,
        "first_name": citizen.first,
        "last_name": citizen.last,
        "language_code": "ru",
    }


def tg_comment(
    page: PageSecrets,
    update_id: int,
    citizen: Citizen,
    message_id: int,
    root: int,
    text: str,
    at: datetime,
    *,
    sticker: bool = False,
) -> dict[str, Any]:
    """A citizen's comment in the channel's discussion group, under channel post `root`."""
    group = tg_group(page)
    message: dict[str, Any] = {
        "message_id": message_id,
        "message_thread_id": root,
        "from": _tg_user(citizen),
        "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
        "date": int(at.timestamp()),
        "reply_to_message": {
            "message_id": root,
            "message_thread_id": root,
            "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
            "sender_chat": {"id": int(page.external_id), "title": "Канал", "type": "channel"},
            "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
            "date": int(at.timestamp()) - 3600,
            "is_automatic_forward": True,
            "text": "Новости: график работы, приём граждан и ближайшие события.",
        },
    }
    if sticker:
        message["sticker"] = {"file_id": f"CAACAgIAAx{message_id}", "emoji": text}
    else:
        message["text"] = text
    return {"update_id": update_id, "message": message}


def tg_page_reply(
    page: PageSecrets,
    update_id: int,
    citizen: Citizen,
    message_id: int,
    root: int,
    answers: int,
    text: str,
    at: datetime,
) -> dict[str, Any]:
    """The channel's own reply to comment `answers`, written natively in Telegram."""
    group = tg_group(page)
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "message_thread_id": root,
            "from": {
                "id": 136817688,
                "is_bot": True,
                "first_name": "Channel",
                "username": "Channel_Bot",
            },
            "sender_chat": {"id": int(page.external_id), "title": "Канал", "type": "channel"},
            "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
            "date": int(at.timestamp()),
            "reply_to_message": {
                "message_id": answers,
                "message_thread_id": root,
                "from": {"id": int(citizen.id), "is_bot": False, "first_name": citizen.first},
                "chat": {"id": group, "title": "Обсуждение", "type": "supergroup"},
                "date": int(at.timestamp()) - 600,
                "text": "вопрос",
            },
            "text": text,
        },
    }


def tg_private(
    update_id: int, citizen: Citizen, message_id: int, text: str, at: datetime
) -> dict[str, Any]:
    """A citizen's private message to the page's bot."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": _tg_user(citizen),
            "chat": {"id": int(citizen.id), "first_name": citizen.first, "type": "private"},
            "date": int(at.timestamp()),
            "text": text,
        },
    }


# --- OK and MAX -------------------------------------------------------------------------------


def ok_message(citizen: Citizen, seq: int, text: str, at: datetime) -> dict[str, Any]:
    """A citizen's private message to the OK group."""
    return {
        "sender": {"user_id": f"user:{citizen.id}", "name": citizen.name},
        "recipient": {"chat_id": f"chat:C{citizen.id}"},
        "message": {"mid": f"mid:C{citizen.id}.{secrets.token_hex(6)}", "seq": seq, "text": text},
        "timestamp": int(at.timestamp() * 1000),
    }


def max_message(citizen: Citizen, seq: int, text: str, at: datetime) -> dict[str, Any]:
    """A citizen's private message to the MAX bot."""
    return {
        "update_type": "message_created",
        "timestamp": int(at.timestamp() * 1000),
        "user_locale": "ru",
        "message": {
            "sender": {
                "user_id": int(citizen.id),
                "first_name": citizen.first,
                "last_name": citizen.last,
                "username": None,
                "is_bot": False,
            },
            "recipient": {
                "chat_id": int(citizen.id) + 7_000_000_000,
                "chat_type": "dialog",
                "user_id": 91234567,
            },
            "timestamp": int(at.timestamp() * 1000),
            "body": {
                "mid": f"mid.{secrets.token_hex(16)}",
                "seq": seq,
                "text": text,
                "attachments": None,
            },
        },
    }
