"""What a background job is handed: engine, settings, clock, HTTP client, cipher.

A job changes rows only inside `ctx.transaction()`, the one place its work
commits (as a view is for a request): the block commits when it ends and rolls
back if it raises. A job that must commit more than once (claim a row, call a
platform with no transaction open, record the outcome) opens one block per step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.clock import Clock
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import reading_engine

SessionFactory = Callable[[], Session]


@dataclass
class JobContext:
    engine: Engine
    settings: Settings
    clock: Clock
    http: httpx.Client
    cipher: Cipher
    # Set when the worker shuts down: a long run stops between items.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Tests hand in sessions joined to their own rolled-back transaction.
    session_factory: SessionFactory | None = None
    # What a job keeps between its runs in this process, under the job's name (how far
    # it has looked, say); empty in a new process, which then looks at everything.
    memory: dict[str, Any] = field(default_factory=dict)

    def new_session(self, *, reading: bool = False) -> Session:
        """A session of its own, for code that manages its transaction itself."""
        if self.session_factory is not None:
            return self.session_factory()
        engine = reading_engine(self.engine) if reading else self.engine
        return Session(engine, expire_on_commit=False)

    def anything(self, query: Select[Any]) -> bool:
        """Does `query` find a row? A cheap look before a periodic job opens its
        transaction: a Core statement with no ORM session and, on SQLite, no write lock.
        Most runs of a job every second find nothing to do."""
        if self.session_factory is not None:  # tests: within their own transaction
            with self.session_factory() as session:
                return session.connection().execute(query.limit(1)).first() is not None
        with reading_engine(self.engine).connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    @contextmanager
    def transaction(self, *, reading: bool = False) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises.

        `reading`: the block only reads on SQLite, so it takes no write lock there
        (webhook intake may be holding it). Objects stay loaded after the commit.
        """
        with self.new_session(reading=reading) as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()
