"""End to end with the realistic mix: webhooks at a set rate into `otklik serve` (its web
process only stores), separate `otklik worker` processes turn them into questions.

    .venv/bin/python -m bench.e2e [--rate 1000] [--seconds 20] [--workers 2] [--no-postgres]
                                  [--pg-name NAME]

Deliveries go out on one schedule at the rate (bench/pace.lua). Prints the rate offered
(distinct deliveries stored a second), the processing rate sustained (processed a second
while they arrived) and end to end (first delivery received to last one processed), lag
p50/p99 (received to processed), and whether every acknowledged delivery was applied
exactly once, in order per thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from app.core import migrate
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import make_engine, reading_engine
from bench.mix import Mix, applied, load_pages, realistic_mix
from bench.scale import SECRET_KEY, SUBSCRIBER, _cpu_seconds, _env, postgres_url

ROOT = Path(__file__).resolve().parent.parent


def setup(url: str, var: Path, deliveries: int, requests: Path) -> Mix:
    """Migrate and seed; write the mix (about `deliveries`) as wrk's request file."""
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
        # The demo's own examples of failed deliveries are not of the mix (the check and
        # the rate count every stored delivery), as in `bench.scale`.
        session.connection().execute(sa.text("delete from inbound_event"))
        session.commit()
    pages = [s for _, s in load_pages(engine, cipher)]
    engine.dispose()
    mix = realistic_mix(pages, deliveries * 10 // 19, end=datetime.now(UTC))
    with requests.open("w", encoding="utf-8") as fh:
        for d in mix.deliveries:
            fh.write(f"/webhooks/{d.platform}/{d.key}\t{d.body.decode()}\n")
    return mix


def _times(url: str) -> tuple[list[float], list[float]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select received_at, processed_at from inbound_event")).all()
    engine.dispose()

    def ts(v: object) -> float:
        if isinstance(v, str):
            v = datetime.fromisoformat(v)
        assert isinstance(v, datetime)
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp()

    # Of the processed deliveries: when each was received, and its lag to processed.
    received = [ts(r[0]) for r in rows if r[1] is not None]
    done = [ts(r[1]) - ts(r[0]) for r in rows if r[1] is not None]
    return received, done


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process of this machine (backends come and
    go with the pools: all of them, the WAL writer and checkpointer included)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "postgres":
                    found[int(proc.name)] = _cpu_seconds(int(proc.name))
            except OSError:
                continue
    return found


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (serve's own worker on SQLite)."""
    total = _cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_tree_cpu(int(c)) for c in children)


def run(url: str, var: Path, rate: int, seconds: int, workers: int, port: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        requests = Path(tmp) / "requests.tsv"
        mix = setup(url, var, rate * seconds, requests)
        env = _env(url, var)
        serve = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            # No workers: `otklik serve` as on one machine, with its own worker process.
            env=dict(env, OTKLIK_RUN_WORKER="true" if workers == 0 else "false"),
            cwd=ROOT,
        )
        procs = [
            subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, cwd=ROOT)
            for _ in range(workers)
        ]
        try:
            _wait_up(port)
            # Deliveries go to running workers, as in service: not while they import the
            # application (1-3 s of CPU each), which the rate and the CPU figures would count.
            _wait_settled([serve, *procs])
            pg0 = _postgres_cpu() if url.startswith("postgresql") else {}
            cpu0 = [_tree_cpu(p.pid) for p in [serve, *procs]]
            wrk0 = os.times()
            # One request every 1/rate s, on one schedule for all connections
            # (bench/pace.lua): the rate offered whatever the answers' times. Enough
            # connections that one answered up to 100 ms late still finds its slot.
            connections = max(1, rate // 10)
            # wrk stops once every delivery was answered (bench/mix.lua); the limit only
            # ends a run that stalls.
            duration = int(len(mix.deliveries) / rate * 4) + 10
            out = subprocess.run(
                # No request given up after wrk's default 2 s: one that was given up is
                # sent again only when the file comes round, long after its thread went on.
                ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s",
                 str(ROOT / "bench" / "mix.lua"), f"http://127.0.0.1:{port}"],
                env=dict(os.environ, BENCH_REQUESTS=str(requests), BENCH_RATE=str(rate)),
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            if "Non-2xx" in out or "Socket errors" in out:
                raise RuntimeError(out)
            wrk_cpu = os.times().children_user + os.times().children_system
            wrk_cpu -= wrk0.children_user + wrk0.children_system
            _wait_drained(url)
            cpu = [_tree_cpu(p.pid) - c for p, c in zip([serve, *procs], cpu0, strict=True)]
            pg1 = _postgres_cpu() if pg0 or url.startswith("postgresql") else {}
            pg_cpu = sum(t - pg0.get(pid, 0.0) for pid, t in pg1.items())
        finally:
            for p in [*procs, serve]:
                p.terminate()
            for p in [*procs, serve]:
                p.wait(timeout=60)
        received, lags = _times(url)
        sent = len(received) / max(1e-9, max(received) - min(received))
        engine = make_engine(url)
        _, line = applied(engine, mix.expected)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("select count(*) from inbound_event")).scalar_one()
        engine.dispose()
        if stored < mix.expected.deliveries:
            # wrk's pacing fell short of the rate: what was never sent cannot be applied.
            line += (
                f"\n    NOT ALL SENT: {stored} of {mix.expected.deliveries} distinct "
                f"deliveries in {duration} s; the check above counts the rest as missing"
            )
    done = [r + lag for r, lag in zip(received, lags, strict=True)]
    first, last = min(received), max(received)
    span = max(done) - first
    # Sustained: processed a second while the deliveries arrived, leaving out the first
    # tenth (the pipeline filling); it equals the rate offered while processing keeps up.
    start = first + (last - first) / 10
    sustained = sum(start <= t <= last for t in done) / max(1e-9, last - start)
    lags.sort()
    p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99) - 1]
    shape = f"{workers} worker(s)" if workers else "serve + its worker"
    per = 1000 / max(1, len(lags))
    shares = ", ".join(
        [f"serve {cpu[0] * per:.2f}"]
        + [f"worker {i + 1} {t * per:.2f}" for i, t in enumerate(cpu[1:])]
        + ([f"PostgreSQL {pg_cpu * per:.2f}"] if url.startswith("postgresql") else [])
        + [f"wrk {wrk_cpu * per:.2f}"]
    )
    return (
        f"{shape}: offered {sent:.0f} deliveries/s; processed {sustained:.0f} events/s "
        f"sustained, {len(lags) / span:.0f} first delivery to last processed ({max(done) - last:.1f} s "
        f"after the last delivery); lag p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms\n"
        f"    CPU per delivery, ms: {shares}\n    {line}"
    )


def _wait_up(port: int) -> None:
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("otklik serve did not start")


def _wait_settled(procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    """Until the processes (and their children) use under 5 % of a core over a second."""
    deadline = time.time() + timeout
    before = [_tree_cpu(p.pid) for p in procs]
    while time.time() < deadline:
        time.sleep(1.0)
        now = [_tree_cpu(p.pid) for p in procs]
        if all(b - a < 0.05 for a, b in zip(before, now, strict=True)):
            return
        before = now
    print("warning: the processes were still busy when the deliveries began", file=sys.stderr)


def _wait_drained(url: str, timeout: float = 900) -> None:
    # Reads that take no write lock: on SQLite the service's writers keep it busy.
    base = make_engine(url)
    engine = reading_engine(base)
    deadline, last, since = time.time() + timeout, -1, time.time()
    sql = sa.text("select count(*) from inbound_event where status in ('pending', 'waiting')")
    while time.time() < deadline:
        with engine.connect() as conn:
            left = conn.execute(sql).scalar_one()
        if left == 0:
            break
        if left != last:
            last, since = left, time.time()
        elif time.time() - since > 60:
            break
        time.sleep(0.25)
    base.dispose()


def bench_e2e(
    rate: int,
    seconds: int,
    workers: list[int],
    postgres: bool,
    pg_name: str = "otklik_bench_e2e",
    sqlite: bool = True,
) -> None:
    print(f"== end to end, realistic mix at {rate} deliveries/s offered for ~{seconds} s ==")
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        if sqlite:
            print("SQLite     " + run(f"sqlite:///{tmp}/e2e.db", var, rate, seconds, 0, 8791))
        if postgres:
            for n in workers:
                url = postgres_url(pg_name)
                print("PostgreSQL " + run(url, var, rate, seconds, n, 8792))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", default="2")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--pg-name", default="otklik_bench_e2e", help="PostgreSQL database to (re)create"
    )
    args = parser.parse_args()
    workers = [int(x) for x in args.workers.split(",")]
    bench_e2e(
        args.rate,
        args.seconds,
        workers,
        postgres=not args.no_postgres,
        pg_name=args.pg_name,
        sqlite=not args.no_sqlite,
    )


if __name__ == "__main__":
    main()
