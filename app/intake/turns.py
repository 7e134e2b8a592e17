"""SQLite's write lock, shared fairly between webhook intake and event processing.

SQLite has one writer at a time and no queue: whoever asks when the lock is free
gets it. Event processing holds it for a batch of events, and a webhook behind
that batch would wait for all of it. So the webhook writer raises a flag while it
waits — one byte in a small file beside the database, mapped into memory by
every process that uses the database — and processing, which looks at it after
each event, commits once it has had the lock for a few milliseconds
(`processor.SQLITE_TURN`), or at once when many deliveries wait, and stands aside
until the flag is lowered. A delivery then waits for that turn and one event at
most, whichever process does the work, and the deliveries that came meanwhile go
in one commit.
A second byte says that processing has the lock, so that intake, rather than
knocking every half millisecond (a failed BEGIN costs as much as a write),
waits for it to drop.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from pathlib import Path

import sqlalchemy as sa

_signals: dict[str, IntakeSignal] = {}
_lock = threading.Lock()


_WAITING = 0  # byte 0: webhook intake waits for the write lock, with this many deliveries
_HOLDING = 1  # byte 1: event processing has (or is taking) the write lock


class IntakeSignal:
    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 2:
                os.ftruncate(fd, 2)
            self._map = mmap.mmap(fd, 2)
        finally:
            os.close(fd)

    # Bytes are written only when they change: a write to a page shared with
    # another process costs more than reading it.
    def _set(self, index: int, value: int) -> None:
        if self._map[index] != value:
            self._map[index] = value

    def raise_(self, waiting: int = 1) -> None:
        """Intake waits for the lock, with this many deliveries (counted up to 255)."""
        self._set(_WAITING, max(1, min(255, waiting)))

    def lower(self) -> None:
        self._set(_WAITING, 0)

    def raised(self) -> bool:
        return self._map[_WAITING] != 0

    def waiting(self) -> int:
        """How many deliveries intake holds while it waits (0: it does not wait)."""
        return self._map[_WAITING]

    def hold(self) -> None:
        """Processing takes the lock for a batch: intake need not knock until it is done."""
        self._set(_HOLDING, 1)

    def release(self) -> None:
        self._set(_HOLDING, 0)

    def held(self) -> bool:
        return self._map[_HOLDING] != 0

    def wait_lowered(self, timeout: float = 0.05) -> None:
        """Stand aside while intake waits (bounded: a writer that died leaves it raised)."""
        deadline = time.monotonic() + timeout
        while self._map[_WAITING] and time.monotonic() < deadline:
            time.sleep(0.0005)


def intake_signal(engine: sa.Engine) -> IntakeSignal | None:
    """The flag of an SQLite database file; None for PostgreSQL and in-memory databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = str(Path(database).resolve())
    with _lock:
        signal = _signals.get(path)
        if signal is None:
            signal = _signals[path] = IntakeSignal(Path(f"{path}-intake"))
        return signal
