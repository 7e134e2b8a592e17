"""Normalised inbound events: what every platform adapter turns a webhook delivery into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    citizen_message = "citizen_message"  # a citizen's new comment or private message
    page_reply = "page_reply"  # the page itself wrote (natively, as the page, staff, a bot)
    edit = "edit"  # an existing object (source_key) was edited: new text
    delete = "delete"  # an existing object was deleted
    restore = "restore"  # VK *_restore: the object is back (full text again)
    context = "context"  # the page's own post: thread context, not a question
    ignored = "ignored"  # understood but irrelevant; still one event so it is recorded


class ThreadKind(StrEnum):
    comment = "comment"
    message = "message"


@dataclass(frozen=True, slots=True)
class Attachment:
    type: str
    url: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundEvent:
    kind: EventKind
    # Platform natural key of the object, unique per page ("wall:-218734591_1542:9187",
    # "msg:384756120:312", "tg:-1001876543210:20578", "ok:mid:...", "max:mid....").
    source_key: str
    # What the object belongs to: a post's comment thread, a private conversation, ...
    thread_key: str
    thread_kind: ThreadKind
    author_id: str  # platform user id as a string, "" if unknown
    author_name: str  # best effort, "" if unknown (VK payloads carry no names)
    text: str  # may be "" (photo only, sticker)
    # UTC-aware platform time; for edits the time of the edit (or of receipt when the
    # platform does not say), for deletions without a timestamp the time of receipt.
    sent_at: datetime
    attachments: tuple[Attachment, ...] = ()
    # source_key of the object this one answers, None if it is not a reply.
    reply_to_key: str | None = None
    # Public URL of the object when derivable.
    permalink: str | None = None
    # Everything send_reply needs to answer THIS object (strings only).
    reply_ref: Mapping[str, str] = field(default_factory=dict)
    raw_type: str = ""  # the platform's event type string
    # For comments whose payload carries the post (TG automatic forward): the post's text.
    context_text: str = ""
    # A group chat: each citizen message is a question of its own, so a message never
    # joins the author's earlier question in the same thread.
    group_chat: bool = False
