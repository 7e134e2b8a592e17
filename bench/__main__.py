"""`make bench`: figures, not tests. Medians of repeated runs, ratios against baselines
measured in the same run on the same machine.

1. Directory import: 10,000 rows on SQLite, against a raw executemany of the same rows.
2. Webhook intake: sustained deliveries/s with durable storage and p50/p99 latency
   (wrk, one thread, 32 connections) on SQLite and PostgreSQL, against a bare FastAPI
   endpoint that only parses the JSON and answers ok; p99 at half the maximum rate;
   end-to-end processing (delivery to question in its queue) rate and lag.
3. Processing of stored deliveries on SQLite (bench/processing.py): events/s, ms and
   SQL statements per event, against only parsing the same payloads.
4. The realistic mix (bench/mix.py: page replies, follow-ups, edits, deletions, overdue
   arrivals over 90 days) drained by 1, 2 and 4 `otklik worker` processes
   (bench/scale.py), and posted at 1,000/s through wrk into `otklik serve` with two
   workers (bench/e2e.py); each run checks that every delivery was applied exactly
   once, in order per thread.
5. Reports at a region's scale (bench/reports.py): the dashboard, the SLA report and
   the inbox over a region's year (`otklik demo --scale region-year`, or
   `--questions N`), through `otklik serve`, against a trivial authenticated read on the
   same server; the server's memory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_ADMIN = os.environ.get(
    "OTKLIK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _otklik(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        check=True,
    )
    return result.stdout


def _env(url: str, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=url,
        OTKLIK_VAR_DIR=str(var),
        OTKLIK_LOG_LEVEL="WARNING",
        OTKLIK_RUN_WORKER="true",
        OTKLIK_WORKER_INTERVAL="1",
        OTKLIK_SECRET_KEY="bench-secret-key-0123456789abcdef",
    )
    return env


# --- 1. directory import ------------------------------------------------------


def _registry(path: Path, rows: int) -> None:
    import csv

    from app.directory.spreadsheet import COLUMNS

    sectors = ["administration", "education", "health", "culture", "sport", "housing", "social"]
    platforms = ["vk", "telegram", "ok", "max"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for n in range(rows):
            town = f"Челябинская область / Округ {n % 40} / Поселение {n % 200}"
            platform = platforms[n % 4]
            external = str(300000000 + n) if platform != "telegram" else str(-1002000000000 - n)
            writer.writerow(
                [
                    town,
                    "",
                    "Asia/Yekaterinburg",
                    f"Учреждение {n // 2}",
                    sectors[n % 7],
                    "",
                    platform,
                    f"Страница {n}",
                    f"https://example.ru/{n}",
                    external,
                ]
            )


def bench_import(repeat: int) -> None:
    print("== directory import: 10,000 rows, SQLite ==")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "registry.csv"
        _registry(csv_path, 10_000)
        first, second, base = [], [], []
        for i in range(repeat):
            env = _env(f"sqlite:///{tmpdir / f'import{i}.db'}", tmpdir / "var")
            _otklik(env, "migrate")
            t0 = time.perf_counter()
            _otklik(env, "directory", "import", str(csv_path))
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = _otklik(env, "directory", "import", str(csv_path))
            second.append(time.perf_counter() - t0)
            assert (
                "created territory 0, institution 0, page 0; updated territory 0, institution 0, page 0"
                in out
            )
            # Baseline: the same rows parsed and inserted with sqlite3.executemany, in a subprocess
            # like the import (so interpreter start-up is in both).
            t0 = time.perf_counter()
            subprocess.run(
                [PY, "-c", _RAW_INSERT, str(csv_path), str(tmpdir / f"raw{i}.db")], check=True
            )
            base.append(time.perf_counter() - t0)
        f, s, b = statistics.median(first), statistics.median(second), statistics.median(base)
        print(
            f"import (new rows)        median {f:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in first)})"
        )
        print(f"re-import (no changes)   median {s:6.2f} s")
        print(f"baseline raw executemany median {b:6.2f} s  -> import/baseline ratio {f / b:.1f}x")


_RAW_INSERT = """
import csv, sqlite3, sys
rows = list(csv.reader(open(sys.argv[1], encoding='utf-8')))[1:]
db = sqlite3.connect(sys.argv[2])
db.execute('create table r (a,b,c,d,e,f,g,h,i,j)')
db.executemany('insert into r values (?,?,?,?,?,?,?,?,?,?)', rows)
db.commit()
"""


# --- 2. webhook intake --------------------------------------------------------


@contextmanager
def _server(args: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    process = subprocess.Popen([PY, "-m", *args], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/webhooks/vk/warmup", content=b"{}", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def _wrk(
    url: str, seconds: int, connections: int, rate: int = 0, secret: str = "bench-secret"
) -> tuple[float, float, float]:
    """As fast as `connections` go, or `rate` requests a second on one schedule
    (bench/pace.lua): (requests/s, p50 ms, p99 ms)."""
    env = dict(os.environ, BENCH_SECRET=secret, BENCH_RATE=str(rate))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "vk.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed responses:\n{out}")
    return rps, pct("50"), pct("99")


def _prepare(url: str, var: Path) -> tuple[dict[str, str], str]:
    env = _env(url, var)
    _otklik(env, "migrate")
    code = (
        "from sqlmodel import Session\n"
        "from app.core.config import get_settings\nfrom app.core.crypto import Cipher\nfrom app.core.db import make_engine\n"
        "from app.directory import service\nfrom app.directory.models import *\n"
        "s=get_settings(); e=make_engine(s.database_url)\n"
        "with Session(e) as db:\n"
        " t=service.create_territory(db, TerritoryCreate(name='Челябинская область', kind='region', timezone='Asia/Yekaterinburg'))\n"
        " i=service.create_institution(db, InstitutionCreate(name='Администрация', territory_id=t.id, sector='administration'))\n"
        " p=service.create_page(db, PageCreate(institution_id=i.id, platform='vk', name='VK', external_id='218734591', secret='bench-secret'), Cipher(s.resolved_secret_key()))\n"
        " db.commit(); print(p.key)\n"
    )
    key = subprocess.run(
        [PY, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    return env, key


def _processing(url: str) -> tuple[int, int, float, float]:
    """(received, processed, processing rate/s, p99 lag s) from the stored events."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select received_at, processed_at from inbound_event")).all()
    engine.dispose()

    def ts(v: object) -> float:
        from datetime import UTC, datetime

        if isinstance(v, str):
            v = datetime.fromisoformat(v)
        assert isinstance(v, datetime)
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp()

    received = [ts(r[0]) for r in rows]
    done = [(ts(r[0]), ts(r[1])) for r in rows if r[1] is not None]
    if not done:
        return len(rows), 0, 0.0, 0.0
    span = max(d for _, d in done) - min(r for r, _ in done)
    lags = sorted(d - r for r, d in done)
    return (
        len(received),
        len(done),
        len(done) / span if span else 0.0,
        lags[int(len(lags) * 0.99) - 1 if len(lags) > 1 else 0],
    )


def _wait_processed(url: str, timeout: float = 900) -> None:
    """Until every stored event is processed, or no progress for five seconds."""
    deadline = time.time() + timeout
    last, stalled_since = -1, time.time()
    while time.time() < deadline:
        received, processed, _, _ = _processing(url)
        if processed >= received:
            return
        if processed != last:
            last, stalled_since = processed, time.time()
        elif time.time() - stalled_since > 15:
            return
        time.sleep(0.5)


def bench_webhooks(seconds: int, repeat: int, postgres: bool) -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): webhook benchmark skipped")
        return
    print(f"== webhook intake: wrk -t1 -c32, {seconds} s per run, median of {repeat} ==")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        env = _env("sqlite:///unused.db", tmpdir / "var")
        port = 8765
        with _server(_uvicorn("bench.bare:app", port), env, port):
            bare = [
                _wrk(f"http://127.0.0.1:{port}/webhooks/vk/x", seconds, 32) for _ in range(repeat)
            ]
        bare_rps = statistics.median(r[0] for r in bare)
        print(
            f"bare endpoint            {bare_rps:8.0f} req/s  p50 {statistics.median(r[1] for r in bare):6.2f} ms  p99 {statistics.median(r[2] for r in bare):6.2f} ms"
        )
        targets = [("SQLite", f"sqlite:///{tmpdir / 'bench.db'}", 0.9)]
        if postgres:
            admin = sa.create_engine(
                PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql("DROP DATABASE IF EXISTS otklik_bench")
                conn.exec_driver_sql("CREATE DATABASE otklik_bench")
            admin.dispose()
            targets.append(("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + "/otklik_bench", 0.45))
        for name, url, goal in targets:
            env, key = _prepare(url, tmpdir / "var")
            port += 1
            target = f"http://127.0.0.1:{port}/webhooks/vk/{key}"
            # As deployed: `otklik serve`, one web process and its worker process.
            serve = ["app.cli", "serve", "--port", str(port)]
            # The intake path alone: no worker process, deliveries only stored.
            with _server(serve, dict(env, OTKLIK_RUN_WORKER="false"), port):
                _intake(name, "stored only", target, seconds, repeat, bare_rps, goal)
            _reset_events(url)
            with _server(serve, env, port):
                # The worker processes these while they arrive: intake and processing
                # share the machine (and SQLite's write lock), as they do in production.
                rps = _intake(name, "+ processing", target, seconds, repeat, bare_rps, goal)
                _wait_processed(url)
                received, processed, rate, _ = _processing(url)
                print(
                    f"{name:<10} processing   {rate:8.0f} events/s end to end, first delivery to last "
                    f"question ({processed}/{received} processed; goal 1000 on SQLite)"
                )
                # Half the measured maximum, one request every 2/max s (bench/pace.lua):
                # webhooks come spread out, not in step with the answers.
                half = _wrk(target, seconds, max(16, int(rps) // 20), int(rps / 2))
                print(
                    f"{name:<10} at ~half rate {half[0]:7.0f} req/s  p50 {half[1]:6.2f} ms  p99 {half[2]:6.2f} ms (goal p99 < 50 ms)"
                )
                _wait_processed(url)
            # Sustained load, on a fresh start each: does processing keep up, and how late?
            for offered in (1000, 300):
                _reset_events(url)
                with _server(serve, env, port):
                    # One delivery every 1/offered s, whatever the answers' times.
                    paced = _wrk(target, seconds, max(16, offered // 10), offered)
                    _wait_processed(url)
                    received, processed, rate, lag = _processing(url)
                print(
                    f"{name:<10} at {paced[0]:5.0f} events/s  processed {rate:5.0f} events/s end to end, "
                    f"lag p99 {lag * 1000:7.1f} ms ({processed}/{received}; goal at 1000/s on SQLite, "
                    f"lag < 2000 ms at 300/s)"
                )


def _intake(
    name: str, what: str, target: str, seconds: int, repeat: int, bare_rps: float, goal: float
) -> float:
    runs = [_wrk(target, seconds, 32) for _ in range(repeat)]
    rps = statistics.median(r[0] for r in runs)
    p50 = statistics.median(r[1] for r in runs)
    p99 = statistics.median(r[2] for r in runs)
    print(
        f"{name:<10} {what:<13} {rps:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"ratio {rps / bare_rps:.2f}x of bare (goal {goal}x)"
    )
    return rps


def _reset_events(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for table in (
            "timeline_entry",
            "sla_clock",
            "message",
            "notification",
            "outbox_item",
            "question",
            "inbound_event",
        ):
            conn.execute(sa.text(f"delete from {table}"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", choices=["import", "webhooks", "processing", "mix", "reports"])
    parser.add_argument(
        "--questions",
        type=int,
        default=1_000_000,
        help="reports: questions in the data set (a region's year is about a million)",
    )
    args = parser.parse_args()
    if args.only in (None, "import"):
        bench_import(args.repeat)
    if args.only in (None, "webhooks"):
        bench_webhooks(args.seconds, args.repeat, postgres=not args.no_postgres)
    if args.only in (None, "processing"):
        from bench.processing import bench_processing

        bench_processing(events=2000, repeat=args.repeat)
    if args.only in (None, "mix"):
        from bench.e2e import bench_e2e
        from bench.scale import bench_scale

        postgres = not args.no_postgres
        bench_scale(comments=2000, workers=[1, 2, 4], repeat=args.repeat, postgres=postgres)
        if shutil.which("wrk") is not None:
            bench_e2e(rate=1000, seconds=args.seconds * 2, workers=[2], postgres=postgres)
    if args.only in (None, "reports"):
        from bench.reports import bench_reports

        bench_reports(args.questions, max(args.repeat, 3), postgres=not args.no_postgres)


if __name__ == "__main__":
    main()
