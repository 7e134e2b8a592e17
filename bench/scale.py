"""Processing of the realistic mix (bench/mix.py) by 1, 2 and 4 worker processes.

    .venv/bin/python -m bench.scale [--comments N] [--workers 1,2,4] [--no-postgres]
                                    [--repeat R] [--profile] [--pg-name NAME]
                                    [--split] [--alone]

A migrated database gets the demo region (42 VK pages of 8 municipalities), what a
live region configures (routing rules, a regional SLA policy, a subscriber to
`question.created`), and the mix stored as deliveries the way the receiver stores
them. Then `otklik worker` processes start together (processing, the SLA watcher, the
outbox: all the work of a real worker) and the backlog drains; the rate is stored
deliveries over the time from their start to the last one processed. The check
after each run: every delivery processed exactly once, in order per thread.

Baseline, measured in the same run: parsing the same stored payloads (CPU per event),
so that figures of a shared, noisy machine can be compared as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col

from app.core import migrate
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import make_engine, reading_engine
from app.intake.writer import DeliveryWriter
from bench.mix import Mix, applied, load_pages, realistic_mix, stored

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key-0123456789abcdef"
PG_ADMIN = os.environ.get(
    "OTKLIK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Subscribers' endpoint: refuses at once, so the outbox works (and fails) without a network.
SUBSCRIBER = "http://127.0.0.1:9/otklik"


def postgres_url(name: str) -> str:
    """A fresh PostgreSQL database `name` on the benchmark's server."""
    admin = make_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def prepare(url: str, var: Path, comments: int, seed: int = 7) -> Mix:
    """Migrate, seed the region, store the mix as pending deliveries; returns the mix."""
    from app.demo import region
    from bench.processing import _configure

    settings = Settings(database_url=url, secret_key=SECRET_KEY, var_dir=str(var))
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    cipher = Cipher(settings.resolved_secret_key())
    with Session(engine, expire_on_commit=False) as session:
        region.seed(session, settings)
        _configure(session, cipher)
        session.connection().execute(sa.text(f"update webhook_subscription set url='{SUBSCRIBER}'"))
        # The demo's own examples of failed deliveries are not of the mix (the check
        # after each run counts every stored delivery).
        session.connection().execute(sa.text("delete from inbound_event"))
        session.commit()
    pages = load_pages(engine, cipher)
    by_key = {secrets.key: (page_id, secrets) for page_id, secrets in pages}
    now = datetime.now(UTC)
    mix = realistic_mix([s for _, s in pages], comments, end=now, seed=seed)
    # As the receiver stores them: a re-delivery is the same key, ignored.
    DeliveryWriter(engine).write_now([stored(by_key, m, now) for m in mix.deliveries])
    engine.dispose()
    return mix


def _env(url: str, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=url,
        OTKLIK_VAR_DIR=str(var),
        OTKLIK_LOG_LEVEL="ERROR",
        OTKLIK_WORKER_INTERVAL="1",
        OTKLIK_SECRET_KEY=SECRET_KEY,
    )
    return env


def _status(engine: sa.Engine, stored: bool = True) -> tuple[int, int, float | None, float | None]:
    """(stored (0 unless `stored`), still to do (pending or waiting), and seconds since
    epoch of the first and of the last processed). A read that takes no write lock (on
    SQLite a worker may hold it for long). Without the count of every stored delivery,
    a read of indexes only: the drain asks four times a second, and a whole-table count
    was about 5 % of the PostgreSQL CPU reported by the drain it watched (616 ms of
    statement time against 11.7 s)."""
    total = "(select count(*) from inbound_event)" if stored else "0"
    with reading_engine(engine).connect() as conn:
        if engine.dialect.name == "postgresql" and not stored:
            # Statistics of when every delivery was pending would have it read the table.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        row = conn.execute(
            sa.text(
                f"select {total}, (select count(*) from inbound_event where status in "
                "('pending', 'waiting')), (select min(processed_at) from inbound_event),"
                " (select max(processed_at) from inbound_event)"
            )
        ).one()
    return row[0], row[1] or 0, _epoch(row[2]), _epoch(row[3])


def _jobs_left(engine: sa.Engine) -> int:
    """What the background jobs still have to do now: outbox items due and SLA clocks due
    for a check. A read that takes no write lock."""
    from app.questions.models import OutboxItem
    from app.sla.models import SlaClock

    now = datetime.now(UTC)
    outbox = (
        sa.select(sa.func.count())
        .select_from(OutboxItem)
        .where(
            col(OutboxItem.status).in_(["pending", "sending"]),
            sa.or_(
                col(OutboxItem.next_attempt_at).is_(None), col(OutboxItem.next_attempt_at) <= now
            ),
        )
    )
    clocks = (
        sa.select(sa.func.count())
        .select_from(SlaClock)
        .where(
            col(SlaClock.state).in_(["running", "warning", "breached"]),
            col(SlaClock.check_at) <= now,
        )
    )
    with reading_engine(engine).connect() as conn:
        return int(conn.execute(outbox).scalar_one()) + int(conn.execute(clocks).scalar_one())


def _epoch(value: object) -> float | None:
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _cpu_seconds(pid: int) -> float:
    """CPU seconds so far of a process of this machine (user and system, from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Drained:
    """A drain of the stored backlog by worker processes."""

    events: int
    seconds: float  # from the start of the workers to the last delivery processed
    sustained: float  # events/s from the first delivery processed to the last
    # events/s from the first delivery processed until the jobs had nothing left to do
    # (outbox, SLA sweep): when everything about the mix was done
    with_jobs: float
    cpu_ms: list[float]  # CPU per event of each processing worker (start-up included)
    jobs_cpu_ms: float | None  # of the jobs worker (`split`)
    server_cpu_ms: float | None  # of PostgreSQL's backends of the database
    # The same from the first delivery processed on (the processes' start-up left out):
    # what an event costs while the workers run.
    steady_cpu_ms: list[float]
    steady_jobs_cpu_ms: float | None

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def drain(url: str, var: Path, workers: int, timeout: float = 600, split: bool = False) -> Drained:
    """Start `workers` worker processes on the stored backlog and wait until it is drained.
    `split`: they only process (`otklik worker --only processing`), and one more process
    runs the background jobs (`--only jobs`)."""
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    stored, _, _, _ = _status(engine)
    env = _env(url, var)
    server0 = _server_cpu(engine)
    started = time.time()
    command = [sys.executable, "-m", "app.cli", "worker"]
    commands = [[*command, "--only", "processing"] if split else command] * workers
    if split:
        commands.append([*command, "--only", "jobs"])
    procs = [subprocess.Popen(c, env=env, cwd=ROOT) for c in commands]
    at_first: list[float] | None = None  # each process's CPU when the first was processed
    try:
        deadline = started + timeout
        stalled, last_left = time.time(), stored
        while time.time() < deadline:
            _, left, first_at, _ = _status(engine, stored=False)
            if at_first is None and first_at is not None:
                at_first = [_cpu_seconds(p.pid) for p in procs]
            if left == 0:
                break
            if left != last_left:
                stalled, last_left = time.time(), left
            elif time.time() - stalled > 60:
                break
            time.sleep(0.25)
        # Then what the jobs have left of it (the outbox, the SLA sweep), so that their CPU
        # per event counts all of their work on the mix.
        jobs_deadline = time.time() + 60
        while time.time() < jobs_deadline and _jobs_left(engine) > 0:
            time.sleep(0.25)
        jobs_done = time.time()
        seconds = [_cpu_seconds(p.pid) for p in procs]
        cpu = [t / stored * 1000 for t in seconds]
        steady = [
            (t - t0) / stored * 1000 for t, t0 in zip(seconds, at_first or seconds, strict=True)
        ]
        server = _server_cpu(engine)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    _, _, first, last = _status(engine)
    engine.dispose()
    server_ms = (
        sum(t - server0.get(pid, 0.0) for pid, t in server.items()) / stored * 1000
        if server
        else None
    )
    end = last or time.time()
    return Drained(
        events=stored,
        seconds=end - started,
        sustained=(stored - 1) / (end - first) if first is not None and end > first else 0.0,
        with_jobs=(
            (stored - 1) / (max(end, jobs_done) - first)
            if first is not None and max(end, jobs_done) > first
            else 0.0
        ),
        cpu_ms=cpu[:workers],
        jobs_cpu_ms=cpu[workers] if split else None,
        server_cpu_ms=server_ms,
        steady_cpu_ms=steady[:workers],
        steady_jobs_cpu_ms=steady[workers] if split else None,
    )


def baseline_us(url: str) -> float:
    """CPU microseconds per stored delivery to only parse it with its adapter."""
    from sqlmodel import select

    from app.directory import service as directory_service
    from app.directory.models import Page
    from app.intake.models import InboundEvent
    from webhooks import Malformed, get_adapter

    engine = make_engine(url)
    cipher = Cipher(SECRET_KEY)
    with Session(engine) as session:
        pages = {
            p.id: directory_service.page_secrets(p, cipher) for p in session.exec(select(Page))
        }
        rows = session.exec(
            select(
                InboundEvent.platform,
                InboundEvent.page_id,
                InboundEvent.body,
                InboundEvent.received_at,
            )
        ).all()
    engine.dispose()
    items = [(get_adapter(p), pages[i], b, r) for p, i, b, r in rows]
    t0 = time.process_time()
    for adapter, secrets, body, received in items:
        # Not of the mix (the demo's own test deliveries): processing fails them too.
        with contextlib.suppress(Malformed):
            adapter.parse(secrets, body, received)
    return (time.process_time() - t0) / len(items) * 1e6


def _server_cpu(engine: sa.Engine) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this database (the server
    runs on this machine: read from /proc); empty on SQLite."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text("select pid from pg_stat_activity where datname = current_database()")
        ).scalars()
        return {pid: _cpu_seconds(pid) for pid in pids}


def in_process(url: str) -> tuple[float, float, float, float | None]:
    """Drain the backlog in this process, processing only (no jobs), one processor:
    (events/s, CPU ms per event, SQL statements per event, and on PostgreSQL the
    server's CPU ms per event)."""
    from app.processing.processor import process_one, process_pending

    engine = make_engine(url)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    stored, _, _, _ = _status(engine)
    server0 = _server_cpu(engine)
    sa.event.listen(engine, "before_cursor_execute", count)
    cipher = Cipher(SECRET_KEY)
    t0, cpu0 = time.perf_counter(), time.process_time()
    while process_pending(engine, cipher, lambda: datetime.now(UTC)):
        pass
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    sa.event.remove(engine, "before_cursor_execute", count)
    server = _server_cpu(engine)
    # What waits for a message that came later in the backlog (an early reply or edit)
    # is the retry job's in a worker; here it is tried once more, outside the figures,
    # so that the check after the run sees the whole mix.
    with reading_engine(engine).connect() as conn:
        waiting = conn.execute(
            sa.text("select id from inbound_event where status = 'waiting' order by id")
        ).scalars()
        for event_id in list(waiting):
            process_one(engine, event_id, cipher, lambda: datetime.now(UTC))
    engine.dispose()
    server_ms = (
        sum(t - server0.get(pid, 0.0) for pid, t in server.items()) / stored * 1000
        if server
        else None
    )
    return stored / seconds, cpu / stored * 1000, statements / stored, server_ms


def profile_in_process(url: str, limit: int = 40) -> None:
    """cProfile of draining the backlog in this process (processing only, one worker)."""
    from app.processing.processor import process_pending

    engine = make_engine(url)
    cipher = Cipher(SECRET_KEY)
    profiler = cProfile.Profile()
    profiler.enable()
    while process_pending(engine, cipher, lambda: datetime.now(UTC)):
        pass
    profiler.disable()
    engine.dispose()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(limit)


def bench_scale(
    comments: int,
    workers: list[int],
    repeat: int,
    postgres: bool,
    profile: bool = False,
    *,
    pg_name: str = "otklik_bench_scale",
    split: bool = False,
    alone: bool = False,
) -> dict[str, dict[int, float]]:
    """Drain rates per database and number of workers (medians), printed as they come.
    `alone`: processing only, in this process (`in_process`), instead of workers."""
    how = (
        "processing alone in one process"
        if alone
        else "processing-only workers and one jobs worker"
        if split
        else "worker processes"
    )
    print(
        f"== realistic mix: {comments} citizens' first messages and what follows them, "
        f"drained by {how}, median of {repeat} =="
    )
    targets = [("SQLite", None)] + ([("PostgreSQL", pg_name)] if postgres else [])
    results: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        for name, pg in targets:
            # SQLite: one writer at a time; in this process: one processor.
            counts = [1] if pg is None or alone else workers
            results[name] = {}
            for n in counts:
                rates, ratios, lines, sustained = [], [], [], []
                for r in range(repeat):
                    url = postgres_url(pg) if pg else f"sqlite:///{Path(tmp) / f'scale{n}{r}.db'}"
                    mix = prepare(url, var, comments)
                    base = baseline_us(url)
                    if profile:
                        print(f"  {name}: profile of processing in one process")
                        profile_in_process(url)
                        break
                    if alone:
                        rate, cpu_ms, statements, server_ms = in_process(url)
                        events, seconds = mix.expected.deliveries, mix.expected.deliveries / rate
                        server = (
                            f", PostgreSQL's CPU {server_ms:.2f} ms"
                            if server_ms is not None
                            else ""
                        )
                        print(
                            f"  {name:<10} alone run {r + 1}: {cpu_ms:.2f} ms CPU{server} and "
                            f"{statements:.2f} SQL statements per event"
                        )
                    else:
                        drained = drain(url, var, n, split=split)
                        rate, events, seconds = drained.rate, drained.events, drained.seconds
                        sustained.append(drained.sustained)
                        jobs = (
                            f", jobs worker {drained.jobs_cpu_ms:.2f} ms"
                            if drained.jobs_cpu_ms is not None
                            else ""
                        )
                        server = (
                            f", PostgreSQL {drained.server_cpu_ms:.2f} ms"
                            if drained.server_cpu_ms is not None
                            else ""
                        )
                        workers_ms = ", ".join(f"{ms:.2f}" for ms in drained.cpu_ms)
                        steady_ms = ", ".join(f"{ms:.2f}" for ms in drained.steady_cpu_ms)
                        steady_jobs = (
                            f", jobs worker {drained.steady_jobs_cpu_ms:.2f} ms"
                            if drained.steady_jobs_cpu_ms is not None
                            else ""
                        )
                        print(
                            f"  {name:<10} {n} worker(s) run {r + 1}: {drained.sustained:6.0f} "
                            f"events/s sustained (first to last processed); CPU per event: "
                            f"worker(s) {workers_ms} ms (start-up included){jobs}{server}; "
                            f"after start-up: worker(s) {steady_ms} ms{steady_jobs}; "
                            f"{drained.with_jobs:.0f} events/s until the jobs were done too"
                        )
                    engine = make_engine(url)
                    _, line = applied(engine, mix.expected)
                    engine.dispose()
                    rates.append(rate)
                    ratios.append(1e6 / base / rate)
                    lines.append(line)
                    print(
                        f"  {name:<10} {n} worker(s) run {r + 1}: {rate:6.0f} events/s "
                        f"({events} in {seconds:.1f} s); parse-only {base:.0f} us/event"
                    )
                    print(f"    {line}")
                if not rates:
                    break
                results[name][n] = statistics.median(rates)
                print(
                    f"{name:<10} {n} worker(s): {results[name][n]:6.0f} events/s median "
                    f"({', '.join(f'{x:.0f}' for x in rates)}); parse-only is "
                    f"{statistics.median(ratios):.0f}x faster"
                    + (
                        f"; sustained {statistics.median(sustained):.0f} events/s median"
                        if sustained
                        else ""
                    )
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--comments", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--pg-name", default="otklik_bench_scale", help="PostgreSQL database to (re)create"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="workers only process (`worker --only processing`); one more runs the jobs",
    )
    parser.add_argument(
        "--alone", action="store_true", help="processing only, in this process, one processor"
    )
    args = parser.parse_args()
    bench_scale(
        args.comments,
        [int(x) for x in args.workers.split(",")],
        args.repeat,
        postgres=not args.no_postgres,
        profile=args.profile,
        pg_name=args.pg_name,
        split=args.split,
        alone=args.alone,
    )


if __name__ == "__main__":
    main()
