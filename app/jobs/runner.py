"""Background work: periodic jobs, each on a thread and a cadence of its own.

A slow run of one job (the outbox waiting on a platform) never delays another
(the SLA watcher). A run that handled something is followed at once by the next
(there may be a backlog), or after the job's busy pause; otherwise the job waits its
interval. Which jobs exist
is wired by the application (`app.main`, `app.cli`), not here.

Each job claims its rows itself (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite
has one writer at a time), so running it in several processes is safe.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.jobs import stats
from app.jobs.context import JobContext

__all__ = ["Job", "Runner", "run_once", "run_recorded"]

log = logging.getLogger("otklik.worker")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    # Returns how many items it handled.
    run: Callable[[JobContext], int]
    # Seconds between idle runs; None: `settings.worker_interval`.
    interval: float | None = None
    # Seconds between runs that handled something (0: at once, for a backlog that
    # must drain). A job whose work may wait gathers it into fewer, larger runs.
    busy_pause: float = 0.0


def run_once(ctx: JobContext, job: Job) -> int:
    """One run of `job`; how many items it handled, -1 if it failed (logged)."""
    try:
        return job.run(ctx)
    except Exception:
        log.exception("job failed", extra={"fields": {"job": job.name}})
        return -1


# An idle run is recorded at most this often (seconds): the figures stay fresh
# without a write every few seconds per job.
RECORD_IDLE = 60.0


def run_recorded(ctx: JobContext, job: Job, last_recorded: dict[str, float]) -> int:
    """`run_once`, its duration and outcome written to `job_stat` (see `stats.record`)
    when it handled or failed something, or when nothing was recorded for a while."""
    started_at = ctx.clock()
    t0 = time.perf_counter()
    handled = run_once(ctx, job)
    seconds = time.perf_counter() - t0
    now = time.monotonic()
    if handled != 0 or now - last_recorded.get(job.name, -RECORD_IDLE) >= RECORD_IDLE:
        last_recorded[job.name] = now
        try:
            stats.record(ctx, job.name, started_at, seconds, handled)
        except Exception:
            log.warning("could not record the job's run", extra={"fields": {"job": job.name}})
    return handled


class Runner:
    """Runs `jobs` until `ctx.stopping` is set, one thread each."""

    def __init__(self, ctx: JobContext, jobs: Sequence[Job]) -> None:
        self.ctx = ctx
        self.jobs = list(jobs)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        log.info(
            "worker started",
            extra={"fields": {"jobs": [job.name for job in self.jobs]}},
        )
        for job in self.jobs:
            thread = threading.Thread(
                target=self._loop, args=(job,), name=f"otklik-job-{job.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every job to stop and wait (at most `timeout` seconds in all) for its thread."""
        self.ctx.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning(
                    "job still running at shutdown", extra={"fields": {"thread": thread.name}}
                )
        self._threads.clear()
        log.info("worker stopped")

    def run(self, timeout: float = 30.0, signals: StopSignals | None = None) -> None:
        """Start, block the calling thread until `ctx.stopping` is set or one of the
        installed `signals` came (`otklik worker`), then stop."""
        self.start()
        (signals or StopSignals(self.ctx.stopping)).wait()
        self.stop(timeout)

    def _loop(self, job: Job) -> None:
        stopping = self.ctx.stopping
        interval = self.ctx.settings.worker_interval if job.interval is None else job.interval
        recorded: dict[str, float] = {}
        while not stopping.is_set():
            # Keep going (after its busy pause) while there is a backlog.
            if run_recorded(self.ctx, job, recorded) <= 0:
                stopping.wait(interval)
            elif job.busy_pause:
                stopping.wait(job.busy_pause)


class StopSignals:
    """SIGTERM and SIGINT, noted for the main thread to turn into `stop.set()`.

    A handler runs in the main thread between two bytecodes, possibly inside the very
    `Event.set()` it would call (a second signal while the first is handled), and the
    event's lock is not reentrant: a worker whose handler set the event hung for good
    on two signals (a benchmark's worker, found an hour after its stop). So the handler only
    notes the signal, taking no lock; `wait` sets the event."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.received: list[int] = []

    def handler(self, signum: int, _frame: object) -> None:
        self.received.append(signum)  # atomic; no lock

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handler)
        signal.signal(signal.SIGINT, self.handler)

    def wait(self) -> None:
        """Until a signal came, or `stop` was set by other means."""
        while not self.stop.wait(0.2):
            if self.received:
                self.stop.set()
