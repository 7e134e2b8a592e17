"""VK communities: Callback API in, VK API methods out (see docs/platforms.md, section 1)."""

from __future__ import annotations

import re
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
from webhooks.vk_api import publish, reply_problem

# Comment-like objects: event prefix -> (key prefix, owner field, object-id field, method).
_COMMENT_FAMILIES: dict[str, tuple[str, str, str, str]] = {
    "wall_reply": ("wall", "post_owner_id", "post_id", "wall"),
    "board_post": ("board", "topic_owner_id", "topic_id", "board"),
    "photo_comment": ("photo", "photo_owner_id", "photo_id", "photo"),
    "video_comment": ("video", "video_owner_id", "video_id", "video"),
    "market_comment": ("market", "market_owner_id", "item_id", "market"),
}
_ACTIONS = {
    "new": EventKind.citizen_message,
    "edit": EventKind.edit,
    "restore": EventKind.restore,
    "delete": EventKind.delete,
}
# Board replies mention the answered post as "[post12|Имя], ..." (there is no reply field).
_BOARD_MENTION = re.compile(r"^\[post(\d+)\|")
_CHAT_PEER_MIN = 2_000_000_000
_OTHER_TYPES = frozenset({"wall_post_new", "message_new", "message_reply", "message_edit"})


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a comment lives: its thread key, its own key and how to answer it."""

    thread_key: str
    source_key: str
    reply_ref: dict[str, str]
    permalink: str | None


class VkAdapter:
    name = "vk"

    # --- receiving ---------------------------------------------------------------------------

    def verify(self, page: PageSecrets, headers: Mapping[str, str], body: bytes) -> None:
        # A body that is not JSON is malformed (400), not an impostor: VK never sends one.
        data = parse_json(body)
        if id_str(data.get("group_id")) != _group_id(page):
            raise Unauthentic("group_id does not belong to this page")
        # VK puts the secret in every request, the URL check ("confirmation") included:
        # one without it, when a secret is configured, is refused like a wrong one.
        secret = data.get("secret")
        if not isinstance(secret, str) or not secrets_match(page.secret, secret):
            raise Unauthentic("secret does not match")

    def delivery_key(self, body: bytes) -> str:
        data = parse_json(body)
        event_id = data.get("event_id")
        if isinstance(event_id, str) and event_id:
            return event_id
        if data.get("type") == "confirmation":
            return f"confirmation:{id_str(data.get('group_id'))}"
        raise Malformed("event_id is missing")

    def ack(self, page: PageSecrets, body: bytes) -> Ack:
        data = parse_json(body)
        if data.get("type") == "confirmation":
            if not page.confirmation_code:
                raise Malformed("the VK confirmation string is not configured for this page")
            return Ack(body=page.confirmation_code, store=False)
        return Ack(body="ok")

    def parse(self, page: PageSecrets, body: bytes, received_at: datetime) -> list[InboundEvent]:
        data = parse_json(body)
        event_type = as_str(data.get("type"))
        if not event_type:
            raise Malformed("type is missing")
        if event_type == "confirmation":
            return []
        family, _, action = event_type.rpartition("_")
        known = (family in _COMMENT_FAMILIES and action in _ACTIONS) or event_type in _OTHER_TYPES
        if not known:
            key = f"vk:{event_type}:{as_str(data.get('event_id'))}"
            return [ignored(event_type, key, received_at)]
        obj = data.get("object")
        if not isinstance(obj, dict):
            raise Malformed("object is missing or not an object")
        if event_type == "wall_post_new":
            return [_post_event(page, obj, received_at)]
        if event_type in _OTHER_TYPES:
            return [_message_event(page, event_type, obj, received_at)]
        return [_comment_event(page, event_type, family, _ACTIONS[action], obj, received_at)]

    # --- answering ---------------------------------------------------------------------------

    def send_reply(self, client: httpx.Client, page: PageSecrets, reply: Reply) -> Published:
        return publish(client, page, reply)

    def can_reply(self, page: PageSecrets, reply_ref: Mapping[str, str]) -> str | None:
        return reply_problem(page, reply_ref)


def _group_id(page: PageSecrets) -> str:
    return page.external_id.strip().removeprefix("-")


def _is_page(page: PageSecrets, from_id: str) -> bool:
    return from_id == f"-{_group_id(page)}" or from_id in normalize_staff(page)


def _comment_event(
    page: PageSecrets,
    event_type: str,
    family: str,
    action: EventKind,
    obj: dict[str, Any],
    received_at: datetime,
) -> InboundEvent:
    where = _locate(page, family, obj)
    from_id = id_str(obj.get("from_id"))
    if action is EventKind.delete:
        return InboundEvent(
            kind=EventKind.delete,
            source_key=where.source_key,
            thread_key=where.thread_key,
            thread_kind=ThreadKind.comment,
            author_id=id_str(obj.get("deleter_id")) or id_str(obj.get("user_id")),
            author_name="",
            text="",
            sent_at=received_at,  # delete events carry no timestamp
            reply_ref=where.reply_ref,
            raw_type=event_type,
        )
    kind = action
    if kind is EventKind.citizen_message and _is_page(page, from_id):
        kind = EventKind.page_reply
    text = as_str(obj.get("text"))
    return InboundEvent(
        kind=kind,
        source_key=where.source_key,
        thread_key=where.thread_key,
        thread_kind=ThreadKind.comment,
        author_id=from_id,
        author_name="",
        text=text,
        # Comment edits carry only the creation date; the edit is dated by its delivery.
        sent_at=(None if kind is EventKind.edit else utc_from_seconds(obj.get("date")))
        or received_at,
        attachments=_attachments(obj),
        reply_to_key=_comment_reply_to(family, obj, where, text),
        permalink=where.permalink,
        reply_ref=where.reply_ref,
        raw_type=event_type,
    )


def _locate(page: PageSecrets, family: str, obj: dict[str, Any]) -> _Where:
    prefix, owner_field, object_field, method = _COMMENT_FAMILIES[family]
    # Owner field names differ between event versions and between new/delete objects.
    owner = id_str(obj.get(owner_field)) or id_str(obj.get("owner_id"))
    if not owner:
        owner = f"-{_group_id(page)}"
    object_id = id_str(obj.get(object_field))
    comment_id = id_str(obj.get("id"))
    if not object_id or not comment_id:
        raise Malformed(f"{object_field} and id are required in a {family} event")
    ref: dict[str, str] = {"method": method, "comment_id": comment_id}
    if family == "board_post":
        thread = f"board:{object_id}"
        ref |= {"group_id": owner.removeprefix("-"), "topic_id": object_id}
        link = f"https://vk.com/topic{owner}_{object_id}?post={comment_id}"
    else:
        thread = f"{prefix}:{owner}_{object_id}"
        ref |= {"owner_id": owner, object_field: object_id}
        link = _object_link(prefix, owner, object_id, comment_id, obj)
    return _Where(thread, f"{thread}:{comment_id}", ref, link)


def _object_link(
    prefix: str, owner: str, object_id: str, comment_id: str, obj: dict[str, Any]
) -> str:
    if prefix == "wall":
        link = f"https://vk.com/wall{owner}_{object_id}?reply={comment_id}"
        top = _thread_top(obj)
        if top and top != comment_id:
            link += f"&thread={top}"
        return link
    if prefix == "market":
        return f"https://vk.com/product{owner}_{object_id}"
    return f"https://vk.com/{prefix}{owner}_{object_id}"


def _thread_top(obj: dict[str, Any]) -> str:
    stack = as_list(obj.get("parents_stack"))
    return id_str(stack[0]) if stack else ""


def _comment_reply_to(family: str, obj: dict[str, Any], where: _Where, text: str) -> str | None:
    answered = id_str(obj.get("reply_to_comment")) or _thread_top(obj)
    if not answered and family == "board_post":
        mention = _BOARD_MENTION.match(text)
        answered = mention.group(1) if mention else ""
    if not answered or answered == id_str(obj.get("id")):
        return None
    return f"{where.thread_key}:{answered}"


def _post_event(page: PageSecrets, obj: dict[str, Any], received_at: datetime) -> InboundEvent:
    owner = id_str(obj.get("owner_id")) or f"-{_group_id(page)}"
    post_id = id_str(obj.get("id"))
    if not post_id:
        raise Malformed("id is required in wall_post_new")
    key = f"wall:{owner}_{post_id}"
    from_id = id_str(obj.get("from_id")) or owner
    # A post by a citizen (open wall or a suggested post) is a question, not context.
    by_citizen = not _is_page(page, from_id) and not from_id.startswith("-")
    text = as_str(obj.get("text"))
    return InboundEvent(
        kind=EventKind.citizen_message if by_citizen else EventKind.context,
        source_key=key,
        thread_key=key,
        thread_kind=ThreadKind.comment,
        author_id=from_id,
        author_name="",
        text=text,
        sent_at=utc_from_seconds(obj.get("date")) or received_at,
        attachments=_attachments(obj),
        permalink=f"https://vk.com/wall{owner}_{post_id}",
        reply_ref={"method": "wall", "owner_id": owner, "post_id": post_id},
        raw_type="wall_post_new",
        context_text="" if by_citizen else text,
    )


def _message_event(
    page: PageSecrets, event_type: str, obj: dict[str, Any], received_at: datetime
) -> InboundEvent:
    # From API 5.103 message_new wraps the message; older versions (and message_reply /
    # message_edit always) send the message itself.
    message = obj["message"] if isinstance(obj.get("message"), dict) else obj
    peer = id_str(message.get("peer_id"))
    if not peer:
        raise Malformed("peer_id is required in a message event")
    thread = f"msg:{peer}"
    from_id = id_str(message.get("from_id"))
    outgoing = as_int(message.get("out")) == 1 or event_type == "message_reply"
    if event_type == "message_edit":
        kind = EventKind.edit
    elif outgoing or _is_page(page, from_id):
        kind = EventKind.page_reply
    else:
        kind = EventKind.citizen_message
    author = from_id
    if outgoing and id_str(message.get("admin_author_id")):
        author = id_str(message.get("admin_author_id"))
    reply_to = None
    answered = as_dict(message.get("reply_message"))
    if answered and _message_key(peer, answered):
        reply_to = _message_key(peer, answered)
    sent_at = utc_from_seconds(message.get("date"))
    if kind is EventKind.edit:
        sent_at = utc_from_seconds(message.get("update_time")) or sent_at
    ref = {"method": "messages", "peer_id": peer, "message_id": id_str(message.get("id"))}
    cmid = id_str(message.get("conversation_message_id"))
    if cmid:
        ref["conversation_message_id"] = cmid
    key = _message_key(peer, message)
    if not key:
        raise Malformed("conversation_message_id is required in a message event")
    return InboundEvent(
        kind=kind,
        source_key=key,
        thread_key=thread,
        thread_kind=ThreadKind.message,
        author_id=author,
        author_name="",
        text=as_str(message.get("text")),
        sent_at=sent_at or received_at,
        attachments=_attachments(message),
        reply_to_key=reply_to,
        group_chat=int(peer) >= _CHAT_PEER_MIN if peer.lstrip("-").isdigit() else False,
        reply_ref=ref,
        raw_type=event_type,
    )


def _message_key(peer: str, message: dict[str, Any]) -> str:
    """msg:{peer}:{conversation_message_id}; the message id is 0 in group chats, so the
    conversation id is the stable key everywhere (also what messages.send returns)."""
    cmid = id_str(message.get("conversation_message_id"))
    if cmid:
        return f"msg:{peer}:{cmid}"
    message_id = as_int(message.get("id"))
    if message_id and int(peer) < _CHAT_PEER_MIN:
        return f"msg:{peer}:id{message_id}"  # API versions without conversation ids
    return ""


def _attachments(obj: dict[str, Any]) -> tuple[Attachment, ...]:
    result: list[Attachment] = []
    for item in as_list(obj.get("attachments")):
        kind = as_str(as_dict(item).get("type"))
        if kind:
            result.append(_attachment(kind, as_dict(item.get(kind))))
    return tuple(result)


def _attachment(kind: str, media: dict[str, Any]) -> Attachment:
    owner, media_id = id_str(media.get("owner_id")), id_str(media.get("id"))
    ref = f"{kind}{owner}_{media_id}" if owner and media_id else (media_id or None)
    url: str | None = None
    if kind == "photo":
        sizes = [as_dict(s) for s in as_list(media.get("sizes"))]
        sizes = [s for s in sizes if as_str(s.get("url"))]
        if sizes:
            best = max(
                sizes, key=lambda s: (as_int(s.get("width")) or 0) * (as_int(s.get("height")) or 0)
            )
            url = as_str(best.get("url"))
    elif kind == "audio_message":
        url = as_str(media.get("link_ogg")) or as_str(media.get("link_mp3")) or None
    elif kind == "sticker":
        ref = id_str(media.get("sticker_id")) or ref
    elif kind == "video" and ref:
        url = f"https://vk.com/{ref}"
    elif kind == "wall" and ref:
        ref = f"wall{owner or id_str(media.get('to_id'))}_{media_id}"
        url = f"https://vk.com/{ref}"
    else:
        url = as_str(media.get("url")) or None
    return Attachment(type=kind, url=url, id=ref)
