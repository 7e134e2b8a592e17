"""Group commit of raw deliveries: many webhook requests, one transaction.

The receiving endpoint hands each verified delivery to this writer and awaits
its own commit before answering the platform: an acknowledged event is always
on disk. Everything that arrives while a write is under way goes into the next
one, a single INSERT … ON CONFLICT DO NOTHING (a duplicate delivery is a no-op),
so under load one commit serves dozens of requests and a quiet moment adds no
waiting.

The writer runs on the event loop, with a database connection of its own used
through the driver directly: this is the hottest path in the system, and
handing each delivery to a thread costs more than the insert (a thread that
waits on the database convoys behind the event loop for the interpreter lock).
On PostgreSQL it is psycopg's asynchronous connection. On SQLite the insert
and commit take a fraction of a millisecond (WAL, no fsync per commit) and the
write lock is only ever tried, never waited for: while event processing holds
it, the batch is retried every half millisecond and the loop serves requests.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa

from app.intake.models import EventStatus, InboundEvent
from app.intake.turns import intake_signal

log = logging.getLogger("otklik.receive")

_MAX_BATCH = 1000
_LOCK_WAIT = 10.0  # seconds to wait for SQLite's write lock before giving up (503)
_RETRY = 0.0005  # seconds between tries of SQLite's write lock
# ...and how long to trust processing's "holding" byte before trying regardless
# (a worker killed mid-batch leaves it set).
_HELD_WAIT = 0.2


@dataclass(frozen=True, slots=True)
class Delivery:
    platform: str
    page_id: int
    delivery_key: str
    body: bytes
    received_at: datetime


class DeliveryWriter:
    def __init__(self, engine: sa.Engine, on_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._sqlite = engine.dialect.name == "sqlite"
        self._intake = intake_signal(engine)
        table = InboundEvent.__table__  # type: ignore[attr-defined]
        self._time = table.c.received_at.type.bind_processor(engine.dialect) or (lambda v: v)
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._pending: list[tuple[Delivery, asyncio.Future[None]]] = []
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sqlite_connection: Any = None  # a pooled connection, kept
        self._pg_connection: psycopg.AsyncConnection[Any] | None = None

    async def store(self, delivery: Delivery) -> None:
        """Return once the delivery is committed (or was stored before); raise if it cannot be."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((delivery, future))
        if not self._flushing:
            self._flushing = True
            # After this turn of the loop: requests read in the same turn share the write.
            loop.call_soon(self._flush_sqlite if self._sqlite else self._flush_pg_soon)
        await future

    def write_now(self, deliveries: Sequence[Delivery]) -> None:
        """Store deliveries from synchronous code (the demo's history, benchmarks)."""
        with self._engine.begin() as conn:
            for start in range(0, len(deliveries), _MAX_BATCH):
                chunk = deliveries[start : start + _MAX_BATCH]
                conn.exec_driver_sql(self._sql(len(chunk)), tuple(self._params(chunk)))
        if self._on_commit is not None:
            self._on_commit()

    def close(self) -> None:
        """Release the connection (the server is stopping; nothing is in flight)."""
        if self._sqlite_connection is not None:
            self._sqlite_connection.invalidate()
            self._sqlite_connection = None
        self._pg_connection = None  # closed by aclose() on its own loop, or with the process

    async def aclose(self) -> None:
        if self._pg_connection is not None:
            await self._pg_connection.close()
            self._pg_connection = None
        self.close()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        # A new event loop (the first request, or a test client's own loop): what
        # belonged to the old one cannot be used from this one.
        self._loop = loop
        self._pending = []
        self._flushing = False
        self._pg_connection = None

    def _sql(self, rows: int) -> str:
        m = self._mark
        values = f"({m}, {m}, {m}, {m}, {m}, '{EventStatus.pending.value}', 0, '')"
        return (
            "INSERT INTO inbound_event (platform, page_id, delivery_key, body, received_at,"
            " status, attempts, event_types) VALUES "
            + ", ".join([values] * rows)
            + " ON CONFLICT (page_id, delivery_key) DO NOTHING"
        )

    def _params(self, deliveries: Sequence[Delivery]) -> list[Any]:
        params: list[Any] = []
        for d in deliveries:
            params += (d.platform, d.page_id, d.delivery_key, d.body, self._time(d.received_at))
        return params

    def _take(self) -> list[tuple[Delivery, asyncio.Future[None]]]:
        batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        return batch

    def _done(
        self, batch: list[tuple[Delivery, asyncio.Future[None]]], error: Exception | None
    ) -> None:
        if error is None and self._on_commit is not None:
            self._on_commit()
        for _, future in batch:
            if future.done():
                continue  # the request was cancelled (client gone)
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    # --- SQLite: synchronous on the loop, never blocking on the lock --------------

    def _flush_sqlite(self, started: float | None = None) -> None:
        assert self._loop is not None
        if not self._pending:
            self._flushing = False
            return
        first_try = started if started is not None else time.monotonic()
        intake = self._intake
        if intake is not None and intake.held() and time.monotonic() - first_try < _HELD_WAIT:
            # Processing has the lock and will let go after the event in hand.
            intake.raise_(len(self._pending))
            self._loop.call_later(_RETRY, self._flush_sqlite, first_try)
            return
        batch = self._take()
        try:
            self._write_sqlite([d for d, _ in batch])
        except sqlite3.OperationalError as exc:
            if _locked(exc) and time.monotonic() - first_try < _LOCK_WAIT:
                # Someone (event processing, mostly) has the lock: ask for a turn and try
                # again shortly, with whatever arrived meanwhile.
                self._pending[:0] = batch
                if self._intake is not None:
                    self._intake.raise_(len(self._pending))
                self._loop.call_later(_RETRY, self._flush_sqlite, first_try)
                return
            self._fail(batch, exc)
        except Exception as exc:
            self._fail(batch, exc)
        else:
            self._done(batch, None)
        if self._intake is not None and started is not None:
            self._intake.lower()
        if self._pending:
            self._loop.call_soon(self._flush_sqlite)
        else:
            self._flushing = False

    def _write_sqlite(self, deliveries: list[Delivery]) -> None:
        if self._sqlite_connection is None:
            self._sqlite_connection = self._engine.raw_connection()
            raw = self._sqlite_connection.driver_connection
            # Fail at once when the lock is taken; _flush_sqlite retries without blocking.
            raw.execute("PRAGMA busy_timeout=0")
            # No WAL checkpoints here: one writes the database file and syncs it, tens of
            # milliseconds the loop would stand still. Event processing, which commits
            # after every write of this one, checkpoints instead.
            raw.execute("PRAGMA wal_autocheckpoint=0")
        connection = self._sqlite_connection.driver_connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(self._sql(len(deliveries)), self._params(deliveries))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _fail(self, batch: list[tuple[Delivery, asyncio.Future[None]]], exc: Exception) -> None:
        log.error(
            "could not store deliveries", extra={"fields": {"error": str(exc), "count": len(batch)}}
        )
        if self._sqlite_connection is not None:
            self._sqlite_connection.invalidate()
            self._sqlite_connection = None
        self._pg_connection = None
        self._done(batch, exc)

    # --- PostgreSQL: psycopg's asynchronous connection ---------------------------

    def _flush_pg_soon(self) -> None:
        assert self._loop is not None
        self._loop.create_task(self._flush_pg())

    async def _flush_pg(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                self._flushing = False
                return
            try:
                connection = await self._pg()
                async with connection.transaction():
                    await connection.execute(
                        self._sql(len(batch)), self._params([d for d, _ in batch])
                    )
            except Exception as exc:
                if self._pg_connection is not None:
                    await _close_quietly(self._pg_connection)
                self._fail(batch, exc)
            else:
                self._done(batch, None)

    async def _pg(self) -> psycopg.AsyncConnection[Any]:
        if self._pg_connection is None or self._pg_connection.closed:
            url = self._engine.url.set(drivername="postgresql")
            self._pg_connection = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False),
                options="-c timezone=UTC",
                connect_timeout=5,
                autocommit=True,
            )
        return self._pg_connection


async def _close_quietly(connection: psycopg.AsyncConnection[Any]) -> None:
    try:
        await connection.close()
    except Exception:
        log.debug("closing the writer's connection failed", exc_info=True)


def _locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text
