"""The audit log: who changed what, when, from where (before → after, secrets masked).

`record` adds a row in the caller's transaction and never commits, so an entry
exists exactly when the change it describes does. Nothing in the application
updates or deletes an entry; reading is `entries` (the page and the API).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import AuditEvent
from app.core.db import utcnow

if TYPE_CHECKING:
    from app.auth.models import User

MASK = "••••••"
# A key naming a credential: access_token, secret, password_hash, api_key, page key…
_SECRET_KEY = re.compile(r"token|secret|password|key", re.IGNORECASE)
_MAX_TEXT = 2000
_MAX_DEPTH = 6


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: dates as ISO text, enums as their value, long text cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, Enum):
        return _plain(value.value, depth)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if depth >= _MAX_DEPTH:
        return str(value)[:_MAX_TEXT]
    if isinstance(value, Mapping):
        return mask({str(k): v for k, v in value.items()}, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_plain(v, depth + 1) for v in items]
    return str(value)[:_MAX_TEXT]


def mask(values: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """A JSON-safe copy in which every credential's value is replaced by MASK.

    An empty credential stays empty, so the log can still tell "set" from "not set"."""
    masked: dict[str, Any] = {}
    for key, value in values.items():
        if is_secret_key(key) and value not in (None, "", [], {}):
            masked[key] = MASK
        else:
            masked[key] = _plain(value, depth)
    return masked


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    address: str | None = None,
    summary: str = "",
    at: datetime | None = None,
) -> None:
    """Add one audit entry to the caller's transaction (flushed, never committed).

    `action` is "<object>.<verb>" ("page.create", "user.deactivate", "sign_in.failed");
    `before`/`after` are the changed fields; keys naming a token, secret, password or
    key are masked. When both are given, only the fields that differ are kept."""
    before_values = mask(before) if before is not None else None
    after_values = mask(after) if after is not None else None
    if before_values is not None and after_values is not None:
        changed = {
            k
            for k in before_values.keys() | after_values.keys()
            if before_values.get(k) != after_values.get(k)
            # A masked secret that was replaced still shows as changed.
            or (
                before_values.get(k) == MASK
                and before is not None
                and after is not None
                and before.get(k) != after.get(k)
            )
        }
        before_values = {k: v for k, v in before_values.items() if k in changed}
        after_values = {k: v for k, v in after_values.items() if k in changed}
    session.add(
        AuditEvent(
            at=at or utcnow(),
            actor_id=actor.id if actor is not None else None,
            actor_login=(actor.login if actor is not None else "")[:150],
            action=action[:64],
            object_type=object_type[:40],
            object_id=str(object_id)[:64] if object_id is not None else None,
            before=before_values,
            after=after_values,
            address=address[:64] if address else None,
            summary=summary[:500],
        )
    )
    session.flush()


def snapshot(obj: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The named attributes of a row, for `before`/`after`."""
    return {name: getattr(obj, name, None) for name in fields}


# --- reading ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: int | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(query: Any, f: AuditFilter) -> Any:
    if f.actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == f.actor_id)
    if f.action:
        # "user" matches every user.* action; "user.create" only itself.
        if "." in f.action:
            query = query.where(col(AuditEvent.action) == f.action)
        else:
            query = query.where(col(AuditEvent.action).startswith(f.action + "."))
    if f.object_type:
        query = query.where(col(AuditEvent.object_type) == f.object_type)
    if f.object_id:
        query = query.where(col(AuditEvent.object_id) == f.object_id)
    if f.since is not None:
        query = query.where(col(AuditEvent.at) >= f.since)
    if f.until is not None:
        query = query.where(col(AuditEvent.at) < f.until)
    return query


def entries(
    session: Session, f: AuditFilter, *, limit: int, before_id: int | None = None
) -> tuple[list[AuditEvent], bool]:
    """Entries matching `f`, newest first, older than `before_id`; and whether more follow."""
    query = _filtered(select(AuditEvent), f).order_by(col(AuditEvent.id).desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    rows = list(session.exec(query).all())
    return rows[:limit], len(rows) > limit


def object_types(session: Session) -> list[str]:
    """The object types the log holds, for the filter's choices."""
    rows = session.execute(
        sa.select(col(AuditEvent.object_type)).distinct().order_by(col(AuditEvent.object_type))
    ).all()
    return [row[0] for row in rows]
