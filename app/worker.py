"""Background work: periodic jobs that any number of processes may run at once.

Each job claims its rows itself (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite
has one writer at a time), so running it in several processes is safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from app.clock import Clock
from app.config import Settings
from app.crypto import Cipher

log = logging.getLogger("otklik.worker")


@dataclass
class JobContext:
    engine: Engine
    settings: Settings
    clock: Clock
    http: httpx.Client
    cipher: Cipher


Job = Callable[[JobContext], int]


def jobs() -> list[tuple[str, Job]]:
    """The registered jobs, in the order one sweep runs them."""
    from app.inbox import jobs as inbox_jobs
    from app.inbox import outbox
    from app.sla import watcher as sla_watcher

    return [*inbox_jobs.JOBS, ("outbox", outbox.send_outbox), *sla_watcher.JOBS]


def run_once(ctx: JobContext) -> dict[str, int]:
    """One sweep of every job; returns how many items each handled."""
    done: dict[str, int] = {}
    for name, job in jobs():
        try:
            done[name] = job(ctx)
        except Exception:
            log.exception("job failed", extra={"fields": {"job": name}})
            done[name] = -1
    return done


def run_forever(ctx: JobContext, stop: threading.Event) -> None:
    log.info("worker started", extra={"fields": {"interval": ctx.settings.worker_interval}})
    while not stop.is_set():
        handled = run_once(ctx)
        # Keep going without a pause while there is a backlog.
        if not any(count > 0 for count in handled.values()):
            stop.wait(ctx.settings.worker_interval)
    log.info("worker stopped")


def start_thread(ctx: JobContext) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(ctx, stop), name="otklik-worker", daemon=True
    )
    thread.start()
    return thread, stop
