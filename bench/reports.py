"""Reports and queues at a region's scale: the dashboard, the SLA report and the inbox
over a region's year (`otklik demo --scale region-year`), through a real `otklik serve`.

    .venv/bin/python -m bench.reports [--questions N] [--repeat R] [--no-postgres]
                                      [--sqlite-url URL] [--postgres-url URL]

The data set: `--questions` (default a million) questions over the year before the
generation, written in bulk by `app.demo.region_year` into a SQLite file under
var/bench/ and a PostgreSQL database `otklik_bench_reports_<N>`; a database that
already holds a data set (these, or `--sqlite-url`/`--postgres-url`) is used as it is,
so repeated runs measure without generating again. Generation time is printed when it
happens. Questions marked for the report facts (every one, the first time after the
upgrade that added them) are folded before anything is timed, and that time is printed.

Each figure is the median of `--repeat` timed requests (after one untimed) from a
client on the same machine, signed in as the users who would ask: the regional
supervisor (the ЦУР), a municipal supervisor, and the operator of the institution with
the forgotten backlog (20,000 open questions at a million). The baseline, measured on
the same server in the same run, is one question's outbox (`/api/v1/questions/{id}/
outbox`): a trivial authenticated read by primary key, so ratios compare across
machines. The server is `otklik serve` without its worker process (nothing else runs
against the database while it is measured); its resident memory is read from /proc
after every request and the highest value is printed.

Percentiles are kept per process while nothing in their scope and period changes, so
the dashboards are measured twice: as they are asked for again (the previous request's
percentiles still hold), and each just after a question in scope changed (marked for
folding, untimed, before every request: the period's response times are sorted again,
as on a busy day when every view follows an arrival).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key-0123456789abcdef"
PG_ADMIN = os.environ.get(
    "OTKLIK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-reports-password-0123"
REGION = "Челябинская область"
# The demo municipality with a municipal supervisor, and the region's largest city.
MUNICIPALITY = "Чебаркульский городской округ"
CITY = "Челябинский городской округ"
MB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    name: str
    postgres_ms: float | None
    sqlite_ms: float | None


TARGETS = {
    "dashboard": Target("dashboard, region, quarter", 300, 1000),
    "municipality": Target("dashboard, one municipality, quarter", 100, 100),
    "inbox": Target("inbox, institution with the backlog", 100, 100),
    "sla_year": Target("SLA report by institution, year", 1000, None),
}
RSS_TARGET_MB = 300


def _env(url: str, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=url,
        OTKLIK_VAR_DIR=str(var),
        OTKLIK_LOG_LEVEL="WARNING",
        OTKLIK_SECRET_KEY=SECRET_KEY,
        OTKLIK_RUN_WORKER="false",
    )
    return env


def _otklik(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        check=True,
    ).stdout


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _count(url: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select count(*) from question")).scalar_one())
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def _postgres_database(name: str) -> str:
    """The URL of database `name` on the benchmark's server, created when missing."""
    admin = _engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("select 1 from pg_database where datname = :n"), {"n": name}
        ).first()
        if exists is None:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def fold_marks(url: str) -> None:
    """Fold the questions marked for the report facts (after an upgrade: all of them,
    rebuilt in one pass), so that no timed request pays for it; prints how long."""
    from sqlmodel import Session

    from app.core.db import make_engine
    from app.reports import fold

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    t0 = time.perf_counter()
    with Session(engine) as session, session.begin():
        folded = fold.refresh(session)
    engine.dispose()
    if folded:
        took = time.perf_counter() - t0
        print(
            f"  report facts: {folded:,} marked questions folded in {took:.1f} s".replace(",", " ")
        )


def ensure_data(url: str, var: Path, questions: int) -> int:
    """Generate the data set into `url` unless it holds one; returns its size."""
    found = _count(url)
    if found:
        print(f"  using the data set already there: {found:,} questions".replace(",", " "))
        return found
    env = _env(url, var)
    _otklik(env, "migrate")
    t0 = time.perf_counter()
    out = _otklik(env, "demo", "--questions", str(questions))
    print(f"  generated in {time.perf_counter() - t0:.0f} s (with ANALYZE):")
    for line in out.splitlines():
        if line.startswith("region-year"):
            print(f"    {line}")
    return _count(url)


@dataclass
class Scope:
    region_id: int
    municipality_id: int
    city_id: int
    hot_institution_id: int
    question_id: int
    # The newest question of the municipality (the hot institution's is in the city).
    municipality_question_id: int


def _scope(url: str) -> Scope:
    from app.demo.region_year_rows import HOT_INSTITUTION

    engine = _engine(url)
    with engine.connect() as conn:

        def territory(name: str) -> int:
            return int(
                conn.execute(
                    sa.text("select id from territory where name = :n"), {"n": name}
                ).scalar_one()
            )

        hot = conn.execute(
            sa.text("select id from institution where name = :n"), {"n": HOT_INSTITUTION}
        ).scalar_one()
        question = conn.execute(
            sa.text("select max(id) from question where institution_id = :i"), {"i": hot}
        ).scalar_one()
        municipality = territory(MUNICIPALITY)
        in_municipality = conn.execute(
            sa.text(
                "select max(q.id) from question q join institution i on i.id = q.institution_id "
                "join territory t on t.id = i.territory_id "
                "where t.path like (select path from territory where id = :m) || '%'"
            ),
            {"m": municipality},
        ).scalar_one()
        scope = Scope(
            territory(REGION), municipality, territory(CITY), hot, question, in_municipality
        )
    engine.dispose()
    return scope


def _users(env: dict[str, str], scope: Scope) -> dict[str, str]:
    """The bench's users (created once per database) and an API token for each."""
    users = {
        "bench-cur": ["--role", "supervisor", "--territory", str(scope.region_id)],
        "bench-muni": ["--role", "supervisor", "--territory", str(scope.municipality_id)],
        "bench-op": ["--role", "operator", "--institution", str(scope.hot_institution_id)],
    }
    tokens = {}
    for login, args in users.items():
        try:
            _otklik(env, "users", "create", login, *args, "--password-stdin", stdin=PASSWORD)
        except subprocess.CalledProcessError as exc:
            if "уже существует" not in exc.stderr:
                raise
        tokens[login] = _otklik(env, "tokens", "create", login, "--name", "bench").split()[-1]
    return tokens


@contextmanager
def _serve(env: dict[str, str], port: int) -> Iterator[int]:
    """`otklik serve` (one process: uvicorn runs in it) until the block ends; its pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env, cwd=ROOT
    )
    try:
        # Minutes on a loaded machine: imports alone took 25 s there.
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("otklik serve did not start")
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def _sign_in(base: str, login: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF token on /login"
    answer = client.post(
        "/login", data={"login": login, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, f"sign-in of {login} failed: {answer.status_code}"
    return client


class Meter:
    def __init__(self, pid: int, repeat: int) -> None:
        self.pid = pid
        self.repeat = repeat
        self.peak_rss = _rss_mb(pid)

    def median_ms(
        self,
        client: httpx.Client,
        path: str,
        before: Callable[[], None] | None = None,
        **kwargs: object,
    ) -> tuple[float, list[float]]:
        def once() -> float:
            if before is not None:
                before()  # untimed
            t0 = time.perf_counter()
            answer = client.get(path, **kwargs)  # type: ignore[arg-type]
            took = (time.perf_counter() - t0) * 1000
            assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
            self.peak_rss = max(self.peak_rss, _rss_mb(self.pid))
            return took

        once()  # warm: caches of the process, the database's buffers
        runs = [once() for _ in range(self.repeat)]
        return statistics.median(runs), runs


def _changes(url: str, question_id: int) -> Callable[[], None]:
    """What happens to a question when anything about it changes, as far as the reports
    see: the triggers mark it for folding. The next report folds it in (its day's rollup
    rows rewritten) and sorts the period's response times again: a dashboard opened
    just after a change in scope, as on a busy day."""
    engine = _engine(url)

    def change() -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "insert into report_dirty (question_id, marks) values (:q, 1) "
                    "on conflict (question_id) do update set marks = report_dirty.marks + 1"
                ),
                {"q": question_id},
            )

    return change


def report_indexes(url: str, present: bool) -> None:
    """Drop (for figures before them) or create again the report indexes of the
    migration `report_indexes`, then refresh the planner's statistics."""
    from importlib.util import module_from_spec, spec_from_file_location

    path = next((ROOT / "migrations" / "versions").glob("*_report_indexes.py"))
    spec = spec_from_file_location("report_indexes", path)
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = _engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name, table, columns in module.INDEXES:
            if present:
                conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"
                )
            else:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        # PostgreSQL plans index-only scans only on pages its visibility map marks.
        conn.exec_driver_sql("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE")
    engine.dispose()


def measure(
    name: str,
    url: str,
    var: Path,
    repeat: int,
    port: int,
    indexes: bool = True,
    only: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Every figure on one database; returns the medians (ms) and the peak RSS (MB).
    Without `indexes`, the report indexes are dropped first (the figures before them)."""
    env = _env(url, var)
    _otklik(env, "migrate")
    fold_marks(url)
    report_indexes(url, indexes)
    print(
        f"  {name:<10} report indexes: {'present' if indexes else 'DROPPED (figures before them)'}"
    )
    scope = _scope(url)
    tokens = _users(env, scope)
    postgres = url.startswith("postgresql")
    zone = ZoneInfo("Asia/Yekaterinburg")
    today = datetime.now(UTC).astimezone(zone).date()
    year_ago = today - timedelta(days=364)
    results: dict[str, float] = {}
    with _serve(env, port) as pid:
        base = f"http://127.0.0.1:{port}"
        meter = Meter(pid, repeat)
        api = {
            login: httpx.Client(
                base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}
            )
            for login, token in tokens.items()
        }
        cur_page = _sign_in(base, "bench-cur")
        op_page = _sign_in(base, "bench-op")
        cases: list[tuple[str, httpx.Client, str, str | None]] = [
            ("baseline", api["bench-op"], f"/api/v1/questions/{scope.question_id}/outbox", None),
            ("dashboard", api["bench-cur"], "/api/v1/reports/dashboard?period=quarter", "dashboard"),
            ("dashboard_page", cur_page, "/dashboard?period=quarter", "dashboard"),
            ("dashboard_changed", api["bench-cur"], "/api/v1/reports/dashboard?period=quarter", "dashboard"),
            ("municipality", api["bench-muni"], "/api/v1/reports/dashboard?period=quarter", "municipality"),
            ("municipality_changed", api["bench-muni"], "/api/v1/reports/dashboard?period=quarter", "municipality"),
            (
                "city",
                api["bench-cur"],
                f"/api/v1/reports/dashboard?period=quarter&territory_id={scope.city_id}",
                None,
            ),
            ("inbox", op_page, "/inbox", "inbox"),
            ("inbox_api", api["bench-op"], "/api/v1/questions?status=open&limit=50", "inbox"),
            (
                "sla_year",
                api["bench-cur"],
                f"/api/v1/reports/sla?group_by=institution&from={year_ago}&to={today}",
                "sla_year",
            ),
        ]  # fmt: skip
        labels = {
            "baseline": "baseline: one question's outbox (API)",
            "dashboard": "dashboard, region, quarter (API)",
            "dashboard_page": "dashboard, region, quarter (page)",
            "dashboard_changed": "the same, each after a question in scope changed",
            "municipality": f"dashboard, {MUNICIPALITY}, quarter (API)",
            "municipality_changed": "the same, each after a question in scope changed",
            "city": f"dashboard, {CITY}, quarter (API)",
            "inbox": "inbox of the backlog's institution (page)",
            "inbox_api": "open questions of that institution (API, 50)",
            "sla_year": "SLA report by institution, a year (API)",
        }
        baseline = 0.0
        for key, client, path, target_key in cases:
            if only and key not in only and key != "baseline":
                continue
            changed = {
                "dashboard_changed": scope.question_id,
                "municipality_changed": scope.municipality_question_id,
            }.get(key)
            median, runs = meter.median_ms(
                client, path, before=None if changed is None else _changes(url, changed)
            )
            results[key] = median
            if key == "baseline":
                baseline = median
            goal = ""
            if target_key is not None:
                t = TARGETS[target_key]
                limit = t.postgres_ms if postgres else t.sqlite_ms
                if limit is not None:
                    goal = f"target < {limit:.0f} ms: {'met' if median < limit else 'MISSED'}"
            ratio = f"{median / baseline:6.1f}x" if baseline else "     —"
            print(
                f"  {name:<10} {labels[key]:<52} {median:8.1f} ms  {ratio} baseline  "
                f"(runs {', '.join(f'{r:.0f}' for r in runs)})  {goal}"
            )
        for client in [*api.values(), cur_page, op_page]:
            client.close()
        results["rss_mb"] = meter.peak_rss
        verdict = "met" if meter.peak_rss < RSS_TARGET_MB else "MISSED"
        print(
            f"  {name:<10} {'server RSS, highest after any request':<52} {meter.peak_rss:8.0f} MB"
            f"  target < {RSS_TARGET_MB} MB: {verdict}"
        )
    return results


def bench_reports(
    questions: int,
    repeat: int,
    postgres: bool,
    sqlite: bool = True,
    sqlite_url: str | None = None,
    postgres_url: str | None = None,
    indexes: bool = True,
    port: int = 8871,
    only: frozenset[str] = frozenset(),
) -> None:
    print(
        f"== reports at a region's scale: {questions:,} questions over a year, "
        f"median of {repeat} requests ==".replace(",", " ")
    )
    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    targets = []
    if sqlite:
        targets.append(("SQLite", sqlite_url or f"sqlite:///{var / f'region-year-{questions}.db'}"))
    if postgres:
        targets.append(
            ("PostgreSQL", postgres_url or _postgres_database(f"otklik_bench_reports_{questions}"))
        )
    for name, url in targets:
        print(f"{name}:")
        size = ensure_data(url, var / name.lower(), questions)
        print(f"  scale: {size:,} questions".replace(",", " "))
        measure(name, url, var / name.lower(), repeat, port, indexes, only)
        port += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--port", type=int, default=8871, help="of the server measured")
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated: dashboard, dashboard_page, dashboard_changed, municipality, "
        "municipality_changed, city, inbox, inbox_api, sla_year (default all; the baseline "
        "always runs)",
    )
    parser.add_argument("--sqlite-url", help="a SQLite database with a data set (or to fill)")
    parser.add_argument("--postgres-url", help="a PostgreSQL database with a data set (or to fill)")
    parser.add_argument(
        "--without-report-indexes",
        action="store_true",
        help="drop the report indexes first, for figures before them (created again next run)",
    )
    args = parser.parse_args()
    bench_reports(
        args.questions,
        args.repeat,
        postgres=not args.no_postgres,
        sqlite=not args.no_sqlite,
        sqlite_url=args.sqlite_url,
        postgres_url=args.postgres_url,
        indexes=not args.without_report_indexes,
        port=args.port,
        only=frozenset(c for c in args.cases.split(",") if c),
    )


if __name__ == "__main__":
    main()
