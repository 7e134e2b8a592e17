"""Platform knowledge: verify and parse what a platform sends, publish replies back.

No database and no import from app/: the app looks adapters up here by platform name.
"""

from __future__ import annotations

from webhooks.base import (
    Ack,
    Malformed,
    PageSecrets,
    PermanentError,
    PlatformAdapter,
    Published,
    Reply,
    TransientError,
    Unauthentic,
    parse_json,
)
from webhooks.events import Attachment, EventKind, InboundEvent, ThreadKind
from webhooks.generic import GenericAdapter
from webhooks.max import MaxAdapter
from webhooks.ok import OkAdapter
from webhooks.telegram import TelegramAdapter
from webhooks.vk import VkAdapter

ADAPTERS: dict[str, PlatformAdapter] = {
    adapter.name: adapter
    for adapter in (VkAdapter(), TelegramAdapter(), OkAdapter(), MaxAdapter(), GenericAdapter())
}


def get_adapter(platform: str) -> PlatformAdapter:
    """The adapter for a platform name ("vk", "telegram", "ok", "max", "generic");
    raises KeyError for an unknown one."""
    return ADAPTERS[platform]


__all__ = [
    "ADAPTERS",
    "Ack",
    "Attachment",
    "EventKind",
    "InboundEvent",
    "Malformed",
    "PageSecrets",
    "PermanentError",
    "PlatformAdapter",
    "Published",
    "Reply",
    "ThreadKind",
    "TransientError",
    "Unauthentic",
    "get_adapter",
    "parse_json",
]
