"""The runner: each job on a thread and cadence of its own, a backlog run again at once,
a failing job retried after its interval, a clean stop."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from app.jobs.context import JobContext
from app.jobs.runner import Job, Runner, run_once

WAIT = 10.0  # generous: a loaded CI machine must not fail these


def _counting(
    results: Callable[[int], int], runs: list[float], enough: int, done: threading.Event
) -> Callable[[JobContext], int]:
    def job(_ctx: JobContext) -> int:
        runs.append(time.monotonic())
        if len(runs) >= enough:
            done.set()
        return results(len(runs))

    return job


def test_a_job_that_blocks_does_not_delay_another(ctx: JobContext) -> None:
    release, blocked = threading.Event(), threading.Event()

    def slow(_ctx: JobContext) -> int:
        blocked.set()
        release.wait(WAIT)  # like the outbox waiting on a slow platform
        return 1

    runs: list[float] = []
    enough = threading.Event()
    fast = _counting(lambda _: 0, runs, 3, enough)
    runner = Runner(ctx, [Job("slow", slow, interval=0.01), Job("fast", fast, interval=0.01)])
    runner.start()
    try:
        assert blocked.wait(WAIT)
        assert enough.wait(WAIT), runs  # the watcher keeps its cadence meanwhile
        assert not release.is_set()
    finally:
        release.set()
        runner.stop(timeout=WAIT)


def test_a_job_that_handled_something_runs_again_at_once(ctx: JobContext) -> None:
    runs: list[float] = []
    idle = threading.Event()
    # A backlog for three runs, then nothing: the fourth run is followed by the interval.
    job = _counting(lambda n: 1 if n <= 3 else 0, runs, 4, idle)
    runner = Runner(ctx, [Job("backlog", job, interval=3600)])
    runner.start()
    try:
        assert idle.wait(WAIT)
        time.sleep(0.2)
        assert len(runs) == 4
    finally:
        runner.stop(timeout=WAIT)


def test_a_busy_pause_spaces_the_runs_of_a_job_that_handled_something(
    ctx: JobContext,
) -> None:
    runs: list[float] = []
    enough = threading.Event()
    job = _counting(lambda _: 1, runs, 3, enough)  # always something to do
    runner = Runner(ctx, [Job("names", job, interval=3600, busy_pause=0.3)])
    runner.start()
    try:
        assert enough.wait(WAIT)
    finally:
        runner.stop(timeout=WAIT)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(gaps) >= 2 and all(gap >= 0.29 for gap in gaps), gaps


def test_the_interval_defaults_to_the_worker_interval(ctx: JobContext) -> None:
    ctx.settings.worker_interval = 0.01
    runs: list[float] = []
    enough = threading.Event()
    runner = Runner(ctx, [Job("idle", _counting(lambda _: 0, runs, 3, enough))])
    runner.start()
    try:
        assert enough.wait(WAIT)
    finally:
        runner.stop(timeout=WAIT)


def test_a_failing_job_is_logged_and_tried_again_after_its_interval(ctx: JobContext) -> None:
    runs: list[float] = []
    again = threading.Event()

    def flaky(_ctx: JobContext) -> int:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("database went away")
        again.set()
        return 0

    assert run_once(ctx, Job("flaky", flaky)) == -1
    runs.clear()
    runner = Runner(ctx, [Job("flaky", flaky, interval=0.01)])
    runner.start()
    try:
        assert again.wait(WAIT)
    finally:
        runner.stop(timeout=WAIT)


def test_stop_ends_every_thread_even_mid_interval(ctx: JobContext) -> None:
    runs: list[float] = []
    both = threading.Event()
    idle = _counting(lambda _: 0, runs, 2, both)
    runner = Runner(ctx, [Job("a", idle, interval=3600), Job("b", idle, interval=3600)])
    runner.start()
    assert both.wait(WAIT)  # both ran once and now wait out an hour
    moment = time.monotonic()
    runner.stop(timeout=WAIT)
    assert time.monotonic() - moment < 2.0
    assert ctx.stopping.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("otklik-job-")]


def test_run_blocks_until_told_to_stop(ctx: JobContext) -> None:
    """`otklik worker` runs its jobs this way: until the stop event is set (its signals
    set it), then it stops them and returns."""
    ran = threading.Event()

    def job(_ctx: JobContext) -> int:
        ran.set()
        return 0

    runner = Runner(ctx, [Job("job", job, interval=3600)])
    worker = threading.Thread(target=runner.run, kwargs={"timeout": WAIT})
    worker.start()
    assert ran.wait(WAIT)
    assert worker.is_alive()
    ctx.stopping.set()
    worker.join(WAIT)
    assert not worker.is_alive()


def test_a_stop_signal_inside_the_stop_events_own_set_does_not_hang_the_worker() -> None:
    """A second SIGTERM or SIGINT can arrive while the main thread is inside the stop
    event's `set()`, holding its lock: the handler then runs on that same thread, and
    one that set the event waited for the lock forever. Here the lock is held the same
    way; the handler must return at once, and the wait still stops."""
    import signal

    from app.jobs.runner import StopSignals

    stop = threading.Event()
    signals = StopSignals(stop)
    handled = threading.Event()

    def signal_arrives() -> None:
        signals.handler(signal.SIGTERM, None)
        handled.set()

    with stop._cond:  # type: ignore[attr-defined]  # what Event.set() holds
        arrives = threading.Thread(target=signal_arrives, daemon=True)
        arrives.start()
        returned = handled.wait(2)
    assert returned, "the signal handler waited for the stop event's lock"
    waiting = threading.Thread(target=signals.wait, daemon=True)
    waiting.start()
    waiting.join(5)
    assert not waiting.is_alive() and stop.is_set()
