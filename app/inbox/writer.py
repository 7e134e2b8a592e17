"""Group commit of raw deliveries: many webhook requests, one transaction.

The receiving endpoint hands each verified delivery to this writer and awaits
its own commit before answering the platform: an acknowledged event is always
on disk. One thread drains whatever has queued up and inserts it in a single
transaction (INSERT … ON CONFLICT DO NOTHING, so a duplicate delivery is a
no-op), which costs one commit for dozens of requests under load and adds no
waiting when traffic is light.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.inbox.models import EventStatus, InboundEvent

log = logging.getLogger("otklik.receive")

_MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class Delivery:
    platform: str
    page_id: int
    delivery_key: str
    body: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Stored:
    event_id: int | None  # None: a duplicate of an event stored before
    duplicate: bool


class WriteGate:
    """SQLite has one writer at a time. Inside one process the delivery writer and the
    ingest thread take turns through this lock, the writer first, instead of leaving
    it to SQLite's busy handler, which sleeps up to 100 ms between tries. On
    PostgreSQL it does nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self._lock = threading.Lock() if enabled else None
        self._writer_waiting = threading.Event()

    @contextmanager
    def writer(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        self._writer_waiting.set()
        with self._lock:
            self._writer_waiting.clear()
            yield

    @contextmanager
    def worker(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        while self._writer_waiting.is_set():
            time.sleep(0.0002)  # let the delivery writer go first
        with self._lock:
            yield


class DeliveryWriter:
    def __init__(self, engine: sa.Engine, gate: WriteGate | None = None) -> None:
        self._engine = engine
        self.gate = gate or WriteGate(engine.dialect.name == "sqlite")
        self._queue: queue.SimpleQueue[tuple[Delivery, Future[Stored]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="otklik-writer", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def submit(self, delivery: Delivery) -> Future[Stored]:
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True
        future: Future[Stored] = Future()
        self._queue.put((delivery, future))
        return future

    def close(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[tuple[Delivery, Future[Stored]]]) -> None:
        rows = [
            {
                "platform": d.platform,
                "page_id": d.page_id,
                "delivery_key": d.delivery_key,
                "body": d.body,
                "received_at": d.received_at,
                "status": EventStatus.pending,
                "attempts": 0,
                "event_types": "",
            }
            for d, _ in batch
        ]
        table = InboundEvent.__table__  # type: ignore[attr-defined]
        statement = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["page_id", "delivery_key"])
            .returning(table.c.id, table.c.page_id, table.c.delivery_key)
        )
        try:
            with self.gate.writer(), self._engine.begin() as conn:
                inserted = {
                    (row.page_id, row.delivery_key): row.id for row in conn.execute(statement, rows)
                }
        except Exception as exc:
            log.error(
                "could not store deliveries",
                extra={"fields": {"error": str(exc), "count": len(batch)}},
            )
            for _, future in batch:
                future.set_exception(exc)
            return
        for delivery, future in batch:
            event_id = inserted.get((delivery.page_id, delivery.delivery_key))
            # Two copies inside one batch: the first is stored, the second is a duplicate.
            if event_id is not None:
                inserted.pop((delivery.page_id, delivery.delivery_key))
            future.set_result(Stored(event_id=event_id, duplicate=event_id is None))
