"""Order within a thread when several processors work at once (PostgreSQL).

Each processor claims a batch of the oldest pending deliveries with FOR UPDATE SKIP
LOCKED, so two processors hold different deliveries, but they may hold deliveries
of the same thread (a comment in one batch, its edit or follow-up in the next). The
rule that keeps the platform's order: a delivery is applied only when no older
delivery of any of its threads is still pending in someone else's hands; otherwise
it is left pending (its claim is released at commit) and taken again by a later
batch, after the older one has been applied.

Then the batch takes the advisory locks of all its threads at once, in one global
order (`ingest.thread_locks`), before it applies anything: two transactions never
hold some of each other's locks, so they cannot deadlock on them, and the retry job
(`process_one`), which takes the locks of one delivery, waits for the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col

from app.core import bulk
from app.core.crypto import Cipher
from app.directory import snapshots as directory
from app.directory.snapshots import PageInfo
from app.intake.models import IS_PENDING, InboundEvent
from app.processing import ingest
from webhooks import InboundEvent as Event

# How many pending deliveries of others are looked at (more would mean thousands of
# claimed deliveries in flight: then the rest wait for the next batch).
_OTHERS = 5000
# Threads of deliveries already parsed, by database and delivery id: a delivery
# others hold is looked at by every batch until it is applied.
_SEEN: dict[tuple[str, int], frozenset[str]] = {}
_SEEN_MAX = 20_000


class Stored(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def platform(self) -> str: ...
    @property
    def page_id(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def received_at(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Ready:
    """A claimed delivery that may be applied now, parsed (None: parsing failed, and
    processing will fail it the usual way)."""

    event: Any
    parsed: tuple[PageInfo, list[Event]] | None


def _threads(
    session: Session, event: Stored, cipher: Cipher
) -> tuple[frozenset[str], tuple[PageInfo, list[Event]] | None]:
    key = (str(session.connection().engine.url), event.id)
    try:
        parsed = ingest.parse(session, event, cipher)
    except Exception:
        return frozenset(), None  # fails when processed; it blocks no thread
    found = frozenset(ingest.threads(*parsed))
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    _SEEN[key] = found
    return found, parsed


def _threads_of_others(session: Session, mine: Sequence[Stored], cipher: Cipher) -> list[Any]:
    """(id, threads) of pending deliveries older than the newest of `mine` that
    are not `mine`: claimed by other processors, or left by an earlier batch."""
    ids = [e.id for e in mine]
    columns = [
        InboundEvent.__table__.c[name]  # type: ignore[attr-defined]
        for name in ("id", "platform", "page_id", "body", "received_at")
    ]
    query = (
        sa.select(*columns)
        .where(
            IS_PENDING,
            col(InboundEvent.id) < max(ids),
            sa.not_(bulk.among(session, col(InboundEvent.id), ids)),
        )
        .order_by(col(InboundEvent.id))
        .limit(_OTHERS)
    )
    url = str(session.connection().engine.url)
    others = []
    rows = session.connection().execute(query).all()
    directory.prime_pages(session, {row.page_id for row in rows if (url, row.id) not in _SEEN})
    for row in rows:
        found = _SEEN.get((url, row.id))
        if found is None:
            found = _threads(session, row, cipher)[0]
        others.append((row.id, found))
    return others


def ready(session: Session, claimed: Sequence[Stored], cipher: Cipher) -> list[Ready]:
    """The claimed deliveries that may be applied now, in order, with the locks of
    their threads taken; the others stay pending for a later batch."""
    if not claimed:
        return []
    others = _threads_of_others(session, claimed, cipher)
    out: list[Ready] = []
    held: set[str] = set()  # threads of an older delivery that is not applied here
    position = 0
    for event in sorted(claimed, key=lambda e: e.id):
        while position < len(others) and others[position][0] < event.id:
            held |= others[position][1]
            position += 1
        threads, parsed = _threads(session, event, cipher)
        if threads & held:
            held |= threads  # what follows in these threads waits too
            continue
        out.append(Ready(event, parsed))
    ingest.thread_locks(
        session, [t for r in out if r.parsed is not None for t in ingest.threads(*r.parsed)]
    )
    return out
