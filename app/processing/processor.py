"""Processing of stored deliveries: pending events become messages on questions.

The receiving endpoint only stores; this is where the work happens, in arrival
order, many events to one transaction (each in its own savepoint, so one bad
event is marked failed and the rest go on). It runs as a thread: in the web
process when it processes events itself (the default of a single process), or
in `otklik worker`, which `otklik serve` starts beside the web server so that
processing has its own process and core. Any number of processors may run on
PostgreSQL (pending rows are claimed with FOR UPDATE SKIP LOCKED); on SQLite
they take turns on the write lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.core.clock import Clock
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import reading_engine
from app.directory import snapshots as directory
from app.intake.models import IS_PENDING, InboundEvent
from app.intake.turns import intake_signal
from app.processing import held, order
from app.processing import ingest as inbox_service
from app.routing import lemmas
from app.sla import calendar, escalation
from webhooks import Malformed

log = logging.getLogger("otklik.ingest")

# Deliveries a batch claims. On PostgreSQL 200 rather than 100 spreads a batch's fixed
# statements and trigger firings over more deliveries: 853 and 848 against 808 and 793
# events/s end to end, PostgreSQL's CPU 1.10 against 1.16 ms a delivery (two alternating
# rounds of bench.e2e). SQLite's batches end by SQLITE_BUDGET first.
BATCH = 200
# On SQLite a batch holds the one write lock: commit after this much work
# (seconds), or when the webhook writer is waiting (see turns.py)...
SQLITE_BUDGET = 0.05
# ...but not before it has had the lock this long (seconds): webhooks come one at a
# time, and giving way after every event made each event a transaction of its own
# (SQLite end to end at 1,000 deliveries/s offered on one schedule: 422 events/s
# processed, against 672 and 679 with 5 and 10 ms). What waits meanwhile is written
# by intake in one commit.
SQLITE_TURN = 0.005
# ...unless this many deliveries wait: at intake's full speed, a turn held regardless
# halved the deliveries acknowledged (3,489 against 6,330 a second).
SQLITE_CROWD = 8
POLL = 0.05  # seconds between looks for new events when nobody says there are


@dataclass(frozen=True, slots=True)
class _Stored:
    """The columns of a pending delivery that processing reads (`intake.Delivery`)."""

    id: int
    platform: str
    page_id: int
    body: bytes
    received_at: datetime
    attempts: int


_COLUMNS = [
    InboundEvent.__table__.c[name]  # type: ignore[attr-defined]
    for name in ("id", "platform", "page_id", "body", "received_at", "attempts")
]
_WINDOW = 10 * BATCH
_PENDING = (
    sa.select(*_COLUMNS)
    .where(
        IS_PENDING,
        # A window above the oldest pending id: sorting every pending delivery costs
        # 20 ms with a backlog of 30,000, when PostgreSQL's statistics do not yet know
        # of the backlog and it sorts instead of walking the (partial) index.
        col(InboundEvent.id)
        <= sa.select(sa.func.min(InboundEvent.id)).where(IS_PENDING).scalar_subquery() + _WINDOW,
    )
    .order_by(col(InboundEvent.id))
)
_EVENT = sa.select(*_COLUMNS, col(InboundEvent.status)).where(
    col(InboundEvent.id) == sa.bindparam("event_id")
)


def process_one(engine: sa.Engine, event_id: int, cipher: Cipher, clock: Clock) -> bool:
    """Process one stored delivery in its own transaction; on failure mark it failed."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            row = session.connection().execute(_EVENT, {"event_id": event_id}).first()
            if row is None or row.status in ("processed", "ignored"):
                return True
            settled: list[dict[str, Any]] = []
            event = _Stored(*row[:-1])
            inbox_service.process(session, event, cipher=cipher, now=clock(), settled=settled)
            session.connection().execute(inbox_service.SETTLE, settled)
            session.commit()
            return True
    except Exception as exc:
        _record_failure(engine, event_id, exc, clock)
        return False


def _record_failure(engine: sa.Engine, event_id: int, exc: Exception, clock: Clock) -> None:
    _log_failure(event_id, exc)
    try:
        with Session(engine) as session:
            inbox_service.mark_failed(session, event_id, exc, clock())
            session.commit()
    except Exception:
        log.exception("could not mark the event failed", extra={"fields": {"event_id": event_id}})


def _log_failure(event_id: int | None, exc: Exception) -> None:
    log.warning(
        "processing failed",
        extra={"fields": {"event_id": event_id, "error": f"{type(exc).__name__}: {exc}"}},
        exc_info=not isinstance(exc, Malformed),
    )


def any_pending(dialect: str) -> sa.Select[Any]:
    """The look for pending work. On PostgreSQL in the partial index's order: without
    it PostgreSQL, whose statistics were taken during a backlog, expects a pending row
    near the table's start and scans every processed delivery before the pending ones
    (1.8 ms a look at 20,000 deliveries, growing with the table). SQLite finds the
    first pending row by `ix_inbound_event_status_next` and would sort every pending
    one for the order (1 ms a look with 8,000 pending)."""
    found = _LOOKS.get(dialect)
    if found is None:
        query = sa.select(col(InboundEvent.id)).where(IS_PENDING)
        query = query.order_by(col(InboundEvent.id)) if dialect == "postgresql" else query
        found = _LOOKS[dialect] = query.limit(1)
    return found


# Made once: an idle processor looks 20 times a second, and a new statement's cache
# key costs more than the look itself.
_LOOKS: dict[str, sa.Select[Any]] = {}


def warm_up(clock: Clock) -> None:
    """Load before the first batch what its first event would load holding the batch's
    locks (on SQLite the one write lock, webhooks waiting): this year's production
    calendar, the morphology dictionary and the ORM's mappers. The first event took
    271 ms instead of 7; 57 ms after the calendar and the dictionary, 36 after all."""
    calendar.load_year(clock().year)
    lemmas.lemmatize_tokens(["вопрос"])
    sa.orm.configure_mappers()


def has_pending(engine: sa.Engine) -> bool:
    """A read that takes no write lock: is anything waiting?"""
    with reading_engine(engine).connect() as conn:
        return conn.execute(any_pending(conn.dialect.name)).first() is not None


def _claim(session: Session, limit: int, ids: list[int] | None = None) -> list[_Stored]:
    """Pending events, oldest first (those of `ids` only, if given), locked on PostgreSQL."""
    query = _PENDING.limit(limit) if ids is None else _PENDING.where(col(InboundEvent.id).in_(ids))
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return [_Stored(*row) for row in session.connection().execute(query)]


def process_pending(
    engine: sa.Engine,
    cipher: Cipher,
    clock: Clock,
    limit: int = BATCH,
    *,
    look: bool = True,
    settings: Settings | None = None,
) -> int:
    """Process waiting deliveries, oldest first, in one transaction; how many were handled.

    `look`: first see whether anything waits, with a read that takes no lock (the
    processor skips it after a full batch: there is most likely more).

    The events run one after another with nothing in between: their outcomes are
    written by one UPDATE at the end. Should one of them raise, the transaction is
    rolled back and the same events are processed again with a savepoint each, so
    that the one that fails is marked failed and the others are kept.
    """
    if look and not has_pending(engine):
        return 0
    intake = intake_signal(engine)
    if intake is not None:
        intake.hold()
    try:
        return _process_pending(engine, cipher, clock, limit, settings)
    finally:
        if intake is not None:
            intake.release()


def _process_pending(
    engine: sa.Engine, cipher: Cipher, clock: Clock, limit: int, settings: Settings | None
) -> int:
    ids: list[int] = []
    try:
        with Session(engine, expire_on_commit=False) as session, _alerting(session, settings):
            if _process(engine, session, _claim(session, limit), cipher, clock, ids, careful=False):
                session.commit()
                return len(ids)
        with Session(engine, expire_on_commit=False) as session, _alerting(session, settings):
            _process(
                engine, session, _claim(session, len(ids), ids), cipher, clock, [], careful=True
            )
            session.commit()
    except Exception:
        # The batch could not be committed: one transaction per event, so that
        # whatever fails is marked failed and the rest is kept.
        log.exception("batch processing failed; processing one by one")
        for event_id in ids:
            process_one(engine, event_id, cipher, clock)
    return len(ids)


def _alerting(
    session: Session, settings: Settings | None
) -> contextlib.AbstractContextManager[None]:
    """With settings (the worker's), the alerts of a question overdue when it arrives are
    raised as it is written (`escalation.on_arrival`); without, the sweep raises them."""
    return escalation.alerting(session, settings) if settings else contextlib.nullcontext()


def _process(
    engine: sa.Engine,
    session: Session,
    events: list[_Stored],
    cipher: Cipher,
    clock: Clock,
    ids: list[int],
    *,
    careful: bool,
) -> bool:
    """Process `events` in order, appending the id of each to `ids` before it starts.
    Not `careful`: False as soon as one raises. `careful`: each runs in a savepoint,
    and one that fails is marked failed."""
    sqlite = engine.dialect.name == "sqlite"
    turn = time.perf_counter()
    deadline = turn + SQLITE_BUDGET
    intake = intake_signal(engine)
    settled: list[dict[str, Any]] = []
    # The batch's pages and institutions, where their snapshots are stale: one query.
    directory.prime_pages(session, {e.page_id for e in events})
    # SQLite has one writer at a time: its batches never run side by side.
    work = (
        [order.Ready(e, None) for e in events] if sqlite else order.ready(session, events, cipher)
    )
    # The events' rows are held back and go in one statement at the end (`held.holding`;
    # on SQLite one `executemany` a table); one by one (`careful`), each event writes its own.
    hold = not careful
    with held.holding(session) if hold else contextlib.nullcontext():
        for item in work:
            event = item.event
            ids.append(event.id)
            try:
                if careful:
                    with session.begin_nested():
                        inbox_service.process(
                            session,
                            event,
                            cipher=cipher,
                            now=clock(),
                            settled=settled,
                            parsed=item.parsed,
                            locked=not sqlite,
                        )
                else:
                    inbox_service.process(
                        session,
                        event,
                        cipher=cipher,
                        now=clock(),
                        settled=settled,
                        parsed=item.parsed,
                        locked=not sqlite,
                    )
            except Exception as exc:
                if not careful:
                    return False
                _log_failure(event.id, exc)
                inbox_service.mark_failed(session, event.id, exc, clock())
            if not sqlite:
                continue
            waiting = intake.waiting() if intake is not None else 0
            waits = waiting > 0 and (
                waiting >= SQLITE_CROWD or time.perf_counter() - turn >= SQLITE_TURN
            )
            if not careful and (waits or time.perf_counter() > deadline):
                # A webhook waits for the write lock, or the batch has held it for its
                # budget (the jobs of this process may be waiting): commit what is done,
                # stand aside, and go on with the rest of the batch in a new transaction
                # (claiming the batch again would cost more than the event).
                try:
                    held.settle(session, settled)
                    settled.clear()
                    held.flush(session)
                except Exception:
                    return False
                session.commit()
                if waits and intake is not None:
                    intake.release()
                    intake.wait_lowered()
                    intake.hold()
                turn = time.perf_counter()
                deadline = turn + SQLITE_BUDGET
            elif time.perf_counter() > deadline or waits:
                break  # commit now: others wait for the lock
        if hold:
            # The rows the batch's events held back and the deliveries' outcomes, in one
            # statement (`held.holding`). Should it fail, the batch is done again event by
            # event, nothing held.
            try:
                held.settle(session, settled)
                settled = []
                held.flush(session)
            except Exception:
                return False
        if settled:
            session.connection().execute(inbox_service.SETTLE, settled)
        return True


class Processor:
    """A thread that processes deliveries as they are stored: woken by the writer in
    the same process, and looking every POLL seconds for those stored by others."""

    def __init__(
        self, engine: sa.Engine, cipher: Cipher, clock: Clock, settings: Settings | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._cipher = cipher
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._passes = 0  # completed passes (each ends when nothing is left to do)
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="otklik-processor", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def wake(self) -> None:
        if not self._started:
            with self._lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        self._wake.set()

    def run_forever(self, stop: threading.Event) -> None:
        """Process in the calling thread until `stop` is set (`otklik worker`)."""
        self._stop = stop
        self._run()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until everything stored before this call has been processed (tests, tools)."""
        with self._idle:
            # A pass already under way may have looked before this call: wait for the next.
            target = self._passes + (2 if self._busy else 1)
            self.wake()
            return self._idle.wait_for(lambda: self._passes >= target, timeout)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._started:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        warm_up(self._clock)
        intake = intake_signal(self._engine)
        while not self._stop.is_set():
            self._wake.wait(POLL)
            with self._idle:
                self._wake.clear()
                self._busy = True
            handled = 0
            while not self._stop.is_set():
                try:
                    handled = process_pending(
                        self._engine,
                        self._cipher,
                        self._clock,
                        look=handled < BATCH,
                        settings=self._settings,
                    )
                except Exception:
                    log.exception("processing pass failed")
                    self._stop.wait(1.0)
                    break
                if handled == 0:
                    break
                if intake is not None:
                    intake.wait_lowered()  # let the webhook writer in first
            with self._idle:
                self._busy = False
                self._passes += 1
                self._idle.notify_all()
