"""Telegram: Bot API webhook in, sendMessage out (see docs/platforms.md, section 2).

A page is a channel (external_id = its chat id) with a linked discussion group, plus private
chats with the bot. The discussion group is recognised from the automatic forwards of the
channel's posts; the bot never sees its own messages, so our replies never echo back.
The Bot API calls themselves (sendMessage, getMe, getUpdates, errors) are in telegram_api.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from webhooks.base import (
    Ack,
    Malformed,
    PageSecrets,
    Published,
    Reply,
    Unauthentic,
    as_dict,
    as_int,
    as_list,
    as_str,
    id_str,
    ignored,
    normalize_staff,
    parse_json,
    secrets_match,
    utc_from_seconds,
)
from webhooks.events import Attachment, EventKind, InboundEvent, ThreadKind
from webhooks.telegram_api import _permalink, publish, reply_problem

SECRET_HEADER = "x-telegram-bot-api-secret-token"

_MESSAGE_UPDATES = ("message", "edited_message", "channel_post", "edited_channel_post")
_MEDIA = ("photo", "document", "voice", "video", "video_note", "audio", "animation", "sticker")
_OTHER_CONTENT = ("contact", "location", "venue", "poll", "dice", "story")


class TelegramAdapter:
    name = "telegram"

    # --- receiving ---------------------------------------------------------------------------

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        if not secrets_match(page.secret, headers.get(SECRET_HEADER)):
            raise Unauthentic("X-Telegram-Bot-Api-Secret-Token is missing or does not match")

    def delivery_key(self, body: bytes) -> str:
        update_id = as_int(parse_json(body).get("update_id"))
        if update_id is None:
            raise Malformed("update_id is missing or not an integer")
        return str(update_id)

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        return Ack(body="")

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        update = parse_json(body)
        update_id = self.delivery_key(body)
        update_type = next((k for k in update if k != "update_id"), "unknown")
        if update_type not in _MESSAGE_UPDATES:
            return [ignored(update_type, f"tg:update:{update_id}", received_at)]
        message = update[update_type]
        if not isinstance(message, dict):
            raise Malformed(f"{update_type} is not an object")
        return [_message_event(page, update_type, message, received_at)]

    # --- answering ---------------------------------------------------------------------------

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        return reply_problem(page, reply_ref)

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        return publish(client, page, reply)


# --- a bot of Otklik's own (the alert bot): /start <code>; getMe, getUpdates in telegram_api --


@dataclass(frozen=True, slots=True)
class BotCommand:
    """A command someone sent a bot in a private chat: `/start abc` -> ("start", "abc")."""

    update_id: int
    chat_id: str
    command: str
    argument: str
    first_name: str


def bot_command(update: Mapping[str, Any]) -> BotCommand | None:
    """The command of an update, if it is one sent in a private chat; else None."""
    message = as_dict(update.get("message"))
    chat = as_dict(message.get("chat"))
    text = as_str(message.get("text")).strip()
    update_id = as_int(update.get("update_id"))
    if chat.get("type") != "private" or not text.startswith("/") or update_id is None:
        return None
    head, _, argument = text.partition(" ")
    # "/start@OtklikBot" in a client that names the bot.
    command = head[1:].partition("@")[0].lower()
    return BotCommand(
        update_id=update_id,
        chat_id=id_str(chat.get("id")),
        command=command,
        argument=argument.strip(),
        first_name=as_str(as_dict(message.get("from")).get("first_name")),
    )


def bot_id(page: PageSecrets) -> str:
    """The bot's user id: the numeric prefix of its token ("123456:ABC..." -> "123456")."""
    prefix = (page.access_token or "").partition(":")[0]
    return prefix if prefix.isdigit() else ""


def _message_event(
    page: PageSecrets, update_type: str, message: dict[str, Any], received_at: datetime
) -> InboundEvent:
    chat = as_dict(message.get("chat"))
    chat_id = id_str(chat.get("id"))
    message_id = id_str(message.get("message_id"))
    if not chat_id or not message_id:
        raise Malformed(f"{update_type}.chat.id and message_id are required")
    edited = update_type.startswith("edited_")
    sent_at = utc_from_seconds(message.get("edit_date") if edited else None)
    sent_at = sent_at or utc_from_seconds(message.get("date")) or received_at
    text, attachments = _content(message)
    source_key = f"tg:{chat_id}:{message_id}"
    author_id, author_name = _author(message)
    chat_type = as_str(chat.get("type"))

    if not text and not attachments:
        # Service messages: members joined, pinned, topic created, ...
        return ignored(update_type, source_key, sent_at, author_id=author_id)
    if chat_type == "private" and not edited and text.split(" ", 1)[0] == "/start":
        return ignored(update_type, source_key, sent_at, author_id=author_id)

    common: dict[str, Any] = {
        "source_key": source_key,
        "author_id": author_id,
        "author_name": author_name,
        "text": text,
        "sent_at": sent_at,
        "attachments": attachments,
        "raw_type": update_type,
    }
    if chat_type == "channel" or message.get("is_automatic_forward"):
        # The page's post, in the channel or as the thread root in the discussion group.
        return InboundEvent(
            kind=EventKind.edit if edited else EventKind.context,
            thread_key=source_key,
            thread_kind=ThreadKind.comment,
            permalink=_permalink(chat, message_id, ""),
            reply_ref={"chat_id": chat_id, "message_id": message_id},
            context_text=text,
            **common,
        )

    if chat_type == "private":
        thread_key, thread_kind, thread_id = f"tg:{chat_id}", ThreadKind.message, ""
        reply_ref = {"chat_id": chat_id, "message_id": message_id}
    else:
        root = as_int(message.get("message_thread_id"))
        thread_id = str(root) if root is not None else message_id
        thread_key, thread_kind = f"tg:{chat_id}:{thread_id}", ThreadKind.comment
        reply_ref = {"chat_id": chat_id, "message_id": message_id}
        if message.get("is_topic_message"):
            # Forum topics need the thread id when sending; plain discussion groups reject it.
            reply_ref["message_thread_id"] = thread_id

    answered = as_dict(message.get("reply_to_message"))
    reply_to_key = None
    context_text = ""
    if answered.get("is_automatic_forward"):
        context_text = _content(answered)[0]
    elif answered and "forum_topic_created" not in answered:
        reply_to_key = f"tg:{chat_id}:{id_str(answered.get('message_id'))}"

    if edited:
        kind = EventKind.edit
    elif _is_page(page, message, chat_id):
        kind = EventKind.page_reply
    else:
        kind = EventKind.citizen_message
    return InboundEvent(
        kind=kind,
        thread_key=thread_key,
        thread_kind=thread_kind,
        reply_to_key=reply_to_key,
        permalink=_comment_permalink(chat, message_id, thread_id, answered),
        reply_ref=reply_ref,
        context_text=context_text,
        **common,
    )


def _is_page(page: PageSecrets, message: dict[str, Any], chat_id: str) -> bool:
    sender_chat = id_str(as_dict(message.get("sender_chat")).get("id"))
    channel = page.external_id.strip()
    if sender_chat and sender_chat in (channel, chat_id):
        return True  # written as the channel, or by an anonymous admin of the group
    sender = id_str(as_dict(message.get("from")).get("id"))
    return bool(sender) and (sender in normalize_staff(page) or sender == bot_id(page))


def _author(message: dict[str, Any]) -> tuple[str, str]:
    sender_chat = as_dict(message.get("sender_chat"))
    if sender_chat:
        name = as_str(message.get("author_signature")) or as_str(sender_chat.get("title"))
        return id_str(sender_chat.get("id")), name
    user = as_dict(message.get("from"))
    name = " ".join(p for p in (as_str(user.get("first_name")), as_str(user.get("last_name"))) if p)
    return id_str(user.get("id")), name or as_str(user.get("username"))


def _content(message: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    text = as_str(message.get("text")) or as_str(message.get("caption"))
    attachments: list[Attachment] = []
    for kind in _MEDIA:
        media = message.get(kind)
        if kind == "photo":
            sizes = [as_dict(size) for size in as_list(media)]
            if sizes:
                largest = max(sizes, key=_photo_area)
                attachments.append(Attachment("photo", id=as_str(largest.get("file_id")) or None))
        elif isinstance(media, dict):
            attachments.append(Attachment(kind, id=as_str(media.get("file_id")) or None))
            if kind == "sticker" and not text:
                text = as_str(media.get("emoji"))
    attachments.extend(Attachment(kind) for kind in _OTHER_CONTENT if message.get(kind))
    return text, tuple(attachments)


def _photo_area(size: dict[str, Any]) -> tuple[int, int]:
    area = (as_int(size.get("width")) or 0) * (as_int(size.get("height")) or 0)
    return area, as_int(size.get("file_size")) or 0


def _comment_permalink(
    chat: dict[str, Any], message_id: str, thread_id: str, answered: dict[str, Any]
) -> str | None:
    # A comment is best linked through its public channel post: t.me/<channel>/<post>?comment=.
    if answered.get("is_automatic_forward"):
        channel = as_str(as_dict(answered.get("sender_chat")).get("username"))
        origin = as_dict(answered.get("forward_origin"))
        post_id = id_str(origin.get("message_id")) or id_str(
            answered.get("forward_from_message_id")
        )
        if channel and post_id:
            return f"https://t.me/{channel}/{post_id}?comment={message_id}"
    return _permalink(chat, message_id, thread_id)
