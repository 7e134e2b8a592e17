"""Process-wide snapshots of the configuration that ingestion reads for every event.

Pages with their institutions and territories, routing rules, SLA policies and
calendars, outgoing-webhook subscriptions: written rarely, read for every new
question. A snapshot is a plain value built from the database (never an ORM
object, which belongs to one session) and kept per database (connection pool)
until one of these happens:

- a write to a watched table in this process commits or rolls back: ORM mapper
  events and Core INSERT/UPDATE/DELETE statements on those tables mark the writing
  connection (and session), and their commit or rollback bumps the generation,
  which drops every snapshot;
- another process (another worker, the web process, the CLI) committed a write to
  a watched table: triggers on those tables count every such transaction in
  `snapshot_version`, and a process reads that one number at most every `TTL`
  seconds (the bound on how long another process's change goes unseen). Snapshots
  built under an older number are built again. Before, every snapshot was simply
  rebuilt every `TTL` seconds: at a few hundred events a second that was 5-8 % of a
  worker's CPU, and it grows with the number of pages, institutions and people;
- as a backstop, it is older than `MAX_AGE` seconds.

A transaction that has written watched tables, or holds such changes unflushed,
reads around the snapshots and so always sees its own writes. Raw SQL (text) that
writes those tables must call `invalidate()`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapper, object_session
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import Field, Session, SQLModel

TTL = 2.0  # seconds between reads of `snapshot_version`
MAX_AGE = 60.0  # seconds: a snapshot is built again this often whatever the version says
# The tables snapshots are built from; each room names its own with `watch()`.
WATCHED: tuple[type[Any], ...] = ()
_WATCHED_TABLES: frozenset[str] = frozenset()
_WRITTEN = "otklik.snapshots.written"

T = TypeVar("T")


class SnapshotVersion(SQLModel, table=True):
    """One row: how many transactions have written the watched tables, counted by their
    triggers (migration `2026-12-07_0500_snapshot_version`), whichever process or tool
    wrote them. A table given to `watch()` needs such a trigger too."""

    __tablename__ = "snapshot_version"
    id: int = Field(primary_key=True)
    version: int = Field(default=0, sa_type=sa.BigInteger)


_VERSION = sa.text("SELECT version FROM snapshot_version WHERE id = 1")


@dataclass(slots=True)
class _Entry:
    value: Any
    generation: int
    version: int  # of `snapshot_version` when it was built
    expires: float  # `MAX_AGE`


@dataclass(slots=True)
class _Store:
    """The snapshots of one database, and its `snapshot_version` as last read."""

    entries: dict[Hashable, _Entry]
    version: int = -1
    checked: float = float("-inf")

    def current(self, session: Session, now: float) -> int:
        """The database's version, read again if the last read is `TTL` old."""
        if now - self.checked >= TTL:
            self.version = int(session.connection().execute(_VERSION).scalar() or 0)
            self.checked = now
        return self.version

    def fresh(self, entry: _Entry | None, session: Session, now: float) -> bool:
        return (
            entry is not None
            and entry.generation == _generation
            and entry.expires > now
            and entry.version == self.current(session, now)
        )


_lock = threading.Lock()
_generation = 0
_stores: weakref.WeakKeyDictionary[sa.pool.Pool, _Store] = weakref.WeakKeyDictionary()


def watch(*models: type[Any]) -> None:
    """Snapshots are built from these tables: any write to them drops every snapshot.
    Each needs a `snapshot_version` trigger too (a migration), for other processes."""
    global WATCHED, _WATCHED_TABLES
    for model in models:
        if model in WATCHED:
            continue
        for name in ("after_insert", "after_update", "after_delete"):
            sa.event.listen(model, name, _written)
        WATCHED = (*WATCHED, model)
    _WATCHED_TABLES = frozenset(model.__tablename__ for model in WATCHED)


def invalidate() -> None:
    """Drop every snapshot (of every database) now."""
    global _generation
    with _lock:
        _generation += 1


def get(session: Session, key: Hashable, build: Callable[[Session], T]) -> T:
    """The snapshot `key` of the session's database, built with `build(session)` when
    missing or stale. `build` must return a value no later call mutates; None (a row
    that is not there) is never kept, so a row created a moment ago is found at once."""
    connection = session.connection()
    if connection.info.get(_WRITTEN) or _pending_writes(session):
        return build(session)
    store = _store(connection)
    now = time.monotonic()
    entry = store.entries.get(key)
    if store.fresh(entry, session, now):
        assert entry is not None
        value: T = entry.value
        return value
    # The version before the build: a change committed meanwhile makes it stale at once.
    generation, version = _generation, store.current(session, now)
    value = build(session)
    if value is not None:
        store.entries[key] = _Entry(value, generation, version, now + MAX_AGE)
    return value


def prime(
    session: Session,
    keys: Iterable[Hashable],
    build_many: Callable[[Session, list[Hashable]], Mapping[Hashable, Any]],
) -> None:
    """Build those of `keys` that `get` would build again now, all at once:
    `build_many(session, stale keys)` returns their values (and may add others built
    with them, such as the institutions of pages). For a batch of events that needs
    many snapshots of one kind: one query instead of one per key."""
    connection = session.connection()
    if connection.info.get(_WRITTEN) or _pending_writes(session):
        return
    store = _store(connection)
    now = time.monotonic()
    stale = [k for k in dict.fromkeys(keys) if not store.fresh(store.entries.get(k), session, now)]
    if not stale:
        return
    generation, version = _generation, store.current(session, now)
    for key, value in build_many(session, stale).items():
        if value is not None:
            store.entries[key] = _Entry(value, generation, version, now + MAX_AGE)


def _store(connection: sa.Connection) -> _Store:
    store = _stores.get(connection.engine.pool)
    if store is None:
        with _lock:
            store = _stores.setdefault(connection.engine.pool, _Store({}))
    return store


def _pending_writes(session: Session) -> bool:
    if not (session.new or session.deleted or session.dirty):
        return False
    pending = (*session.new, *session.deleted, *session.dirty)
    return any(isinstance(obj, WATCHED) for obj in pending)


def _written(mapper: Mapper[Any], connection: sa.Connection, target: Any) -> None:
    connection.info[_WRITTEN] = True
    session = object_session(target)
    if session is not None:
        session.info[_WRITTEN] = True
    invalidate()


def _executed(connection: sa.Connection, statement: Any, *_: Any) -> None:
    if isinstance(statement, UpdateBase) and (
        getattr(statement.table, "name", None) in _WATCHED_TABLES
    ):
        connection.info[_WRITTEN] = True
        invalidate()


def _connection_settled(connection: sa.Connection) -> None:
    # Before the database commits or rolls back: readers around the snapshots may
    # fill them again with the old rows until it has, hence the session hook below.
    if connection.info.pop(_WRITTEN, False):
        invalidate()


def _session_settled(session: OrmSession, *_: Any) -> None:
    # After the commit or rollback: drop what was read in the meantime.
    if session.info.pop(_WRITTEN, False):
        invalidate()


sa.event.listen(sa.Engine, "after_execute", _executed)
sa.event.listen(sa.Engine, "commit", _connection_settled)
sa.event.listen(sa.Engine, "rollback", _connection_settled)
sa.event.listen(OrmSession, "after_commit", _session_settled)
sa.event.listen(OrmSession, "after_rollback", _session_settled)
