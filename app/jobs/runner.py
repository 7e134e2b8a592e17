"""Background work: periodic jobs that any number of processes may run at once.

Each job claims its rows itself (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite
has one writer at a time), so running it in several processes is safe.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from app.core.clock import Clock
from app.core.config import Settings
from app.core.crypto import Cipher

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
    from app.outbox import sender as outbox
    from app.processing import jobs as inbox_jobs
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


class Companion:
    """The `otklik worker` process that `otklik serve` runs beside the web server.

    Restarted if it dies; stopped (SIGTERM, then SIGKILL) with the server; on
    Linux it also dies with its parent, should the server be killed outright.
    """

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="otklik-companion", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=5)

    def _spawn(self) -> None:
        self._process = subprocess.Popen(self._command, preexec_fn=_die_with_parent)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            process = self._process
            if process is not None and process.poll() is not None and not self._stop.is_set():
                log.error(
                    "worker process exited; restarting",
                    extra={"fields": {"code": process.returncode}},
                )
                self._stop.wait(1.0)
                if not self._stop.is_set():
                    self._spawn()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
