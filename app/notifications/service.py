"""A user's in-app alerts: the bell's count, the list (unread first), marking read.

The rows (`auth.models.Notification`) are written by the SLA watcher and by
transfers; this room only reads them for their owner and marks them read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Notification, User
from app.core.errors import NotFound

UNREAD_LIMIT = 200  # unread alerts shown at once; more are a backlog to mark read
READ_PAGE = 30

KIND_RU: dict[str, str] = {
    "sla.warning": "Скоро срок",
    "sla.breached": "Срок нарушен",
    "sla.escalated": "Эскалация",
    "transferred": "Передан вам",
}


_TRAILING_LINK = re.compile(r"\s+https?://\S+$")


def display_text(item: Notification) -> str:
    """The alert's text for the list: without the question's address that ends the
    Telegram and e-mail version (in the list the whole alert is that link)."""
    return _TRAILING_LINK.sub("", item.text)


@dataclass
class Listing:
    unread: Sequence[Notification]
    unread_total: int
    read: Sequence[Notification]
    # The id to continue the read list below, or None at its end.
    older: int | None


def _own(user: User) -> sa.ColumnElement[bool]:
    return col(Notification.user_id) == user.id


def unread_count(session: Session, user: User) -> int:
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(_own(user), col(Notification.read_at).is_(None))
        ).scalar_one()
    )


def listing(session: Session, user: User, *, older_than: int | None = None) -> Listing:
    """Unread newest first (all of them up to UNREAD_LIMIT), then a page of read ones,
    newest first, below the id `older_than` when paging on."""
    unread = session.exec(
        select(Notification)
        .where(_own(user), col(Notification.read_at).is_(None))
        .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(UNREAD_LIMIT)
    ).all()
    total = len(unread) if len(unread) < UNREAD_LIMIT else unread_count(session, user)
    query = select(Notification).where(_own(user), col(Notification.read_at).is_not(None))
    if older_than is not None:
        query = query.where(col(Notification.id) < older_than)
    read = session.exec(query.order_by(col(Notification.id).desc()).limit(READ_PAGE + 1)).all()
    more = len(read) > READ_PAGE
    read = read[:READ_PAGE]
    return Listing(unread, total, read, read[-1].id if more and read else None)


def get_own(session: Session, user: User, notification_id: int) -> Notification:
    """The user's own alert; another user's is as missing as one that never was."""
    item = session.get(Notification, notification_id)
    if item is None or item.user_id != user.id:
        raise NotFound("Уведомление не найдено")
    return item


def mark_read(session: Session, user: User, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's alerts read (again is a no-op). Raises NotFound."""
    item = get_own(session, user, notification_id)
    if item.read_at is None:
        item.read_at = now
        # Seen in Otklik before the morning digest: no need to send it to Telegram too.
        item.delivered_at = item.delivered_at or now
        session.add(item)
        session.flush()
    return item


def mark_all_read(session: Session, user: User, now: datetime) -> int:
    """Mark every unread alert of the user read; returns how many."""
    result = session.execute(
        sa.update(Notification)
        .where(_own(user), col(Notification.read_at).is_(None))
        .values(
            read_at=now,
            delivered_at=sa.func.coalesce(col(Notification.delivered_at), now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
