"""Platform-supplied strings cut to the columns that hold them, the same on both databases.

SQLite stores a VARCHAR(n) value of any length; PostgreSQL refuses one over n
characters and the whole delivery fails processing. So every string an adapter
hands over is bounded here, before it meets a column, and both databases keep the
same thing:

- keys and ids (thread, object, reply-to, author) must stay distinct and stable: a
  long one keeps its start and ends in a hash of the whole, so an edit or deletion of
  the same object finds it again and two long keys never merge;
- names are shortened (with «…»): they are shown, never compared;
- a URL that does not fit is dropped: half a link leads nowhere.
"""

from __future__ import annotations

import dataclasses
import hashlib

from webhooks import InboundEvent

KEY_MAX = 255  # thread_key, source_key, external_id, reply_to_key, author_id columns
NAME_MAX = 255  # citizen_name, author_name
URL_MAX = 1000  # permalink columns
TYPE_MAX = 100  # a platform's event type name (shown, listed in event_types)


def key(value: str) -> str:
    """The key itself if it fits, else its start and a hash of the whole (KEY_MAX long)."""
    if len(value) <= KEY_MAX:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[: KEY_MAX - len(digest) - 1]}#{digest}"


def name(value: str, limit: int = NAME_MAX) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def url(value: str | None) -> str | None:
    return value if value is None or len(value) <= URL_MAX else None


def event(e: InboundEvent) -> InboundEvent:
    """The event with every string that goes to a bounded column bounded (usually itself)."""
    if (
        len(e.source_key) <= KEY_MAX
        and len(e.thread_key) <= KEY_MAX
        and len(e.author_id) <= KEY_MAX
        and len(e.author_name) <= NAME_MAX
        and (e.reply_to_key is None or len(e.reply_to_key) <= KEY_MAX)
        and (e.permalink is None or len(e.permalink) <= URL_MAX)
        and len(e.raw_type) <= TYPE_MAX
    ):
        return e
    return dataclasses.replace(
        e,
        source_key=key(e.source_key),
        thread_key=key(e.thread_key),
        author_id=key(e.author_id),
        author_name=name(e.author_name),
        reply_to_key=None if e.reply_to_key is None else key(e.reply_to_key),
        permalink=url(e.permalink),
        raw_type=name(e.raw_type, TYPE_MAX),
    )
