"""Processing cost of stored webhook deliveries on SQLite: events/s and ms per event.

    .venv/bin/python -m bench.processing [--events N] [--repeat R] [--profile]

A migrated SQLite database in a temporary directory gets the demo directory and N
realistic deliveries (TrafficGenerator, verified and stored by the receiver's own
check and DeliveryWriter, like `otklik demo --history-days`). Each run copies that
database and processes every stored event, first one by one with `process_one`
(per-event times, SQL statements and ORM flushes), then in batches with
`process_pending` (what the processor thread runs), whose rate is the sustained
processing rate. The baseline, measured in the same run, is the cost of
only parsing the same payloads with their platform adapters: the machine is shared
and noisy, the ratio to that baseline is the steadier figure.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app.core import migrate
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import make_engine
from app.demo.traffic import TrafficGenerator
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake.models import EventStatus, InboundEvent
from app.intake.writer import DeliveryWriter
from app.processing.processor import process_one, process_pending
from app.questions.models import Question
from bench.mix import load_pages, realistic_mix, stored
from webhooks import get_adapter

SECRET_KEY = "bench-secret-key-0123456789abcdef"


@dataclass
class Run:
    per_event_ms: list[float]
    cpu_ms: float
    sequential_rate: float
    batch_rate: float
    batch_cpu_ms: float
    batch_statements: float
    baseline_us: float
    statements: float
    flushes: float
    questions: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.per_event_ms)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.per_event_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class _Counter:
    """SQL statements (cursor executions) and ORM flushes while enabled."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements = 0
        self.flushes = 0
        self.enabled = False
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(OrmSession, "after_flush", self._flush)

    def _statement(self, *_: Any) -> None:
        if self.enabled:
            self.statements += 1

    def _flush(self, *_: Any) -> None:
        if self.enabled:
            self.flushes += 1

    def close(self, engine: sa.Engine) -> None:
        sa.event.remove(engine, "before_cursor_execute", self._statement)
        sa.event.remove(OrmSession, "after_flush", self._flush)


def prepare(path: Path, events: int, seed: int = 7, mix: str = "realistic") -> None:
    """A migrated database with the demo directory and about `events` stored, unprocessed
    deliveries: the realistic mix (bench/mix.py), or `simple`, the demo's traffic
    generator over two days (mostly new questions), as measured before the mix."""
    from app.demo import region as demo

    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, secret_key=SECRET_KEY, var_dir=str(path.parent))
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        demo.seed(session, settings)
        _configure(session, Cipher(settings.resolved_secret_key()))
        session.commit()
    cipher = Cipher(settings.resolved_secret_key())
    pages = load_pages(engine, cipher)
    by_key = {secrets.key: (page_id, secrets) for page_id, secrets in pages}
    deliveries = []
    if mix == "realistic":
        now = datetime.now(UTC)
        # About 1.9 deliveries per citizen's first message (replies, follow-ups, edits).
        made = realistic_mix([s for _, s in pages], events * 10 // 19, end=now, seed=seed)
        deliveries = [stored(by_key, m, now) for m in made.deliveries]
    else:
        generator = TrafficGenerator([s for _, s in pages], seed=seed)
        rng = random.Random(seed)
        # Deliveries over the last two days, a few seconds apart, received 0.2-3 s later.
        start = datetime.now(UTC) - timedelta(days=2)
        step = timedelta(days=2) / events
        for n in range(events):
            moment = start + step * n
            received = moment + timedelta(seconds=rng.uniform(0.2, 3.0))
            deliveries.append(stored(by_key, generator.next(moment), received))
    DeliveryWriter(engine).write_now(deliveries)
    # Closing the last connection checkpoints the WAL into the file that runs copy.
    engine.dispose()
    if Path(f"{path}-wal").exists():
        raise RuntimeError("the template database kept its WAL")


def _configure(session: Session, cipher: Cipher) -> None:
    """What a live region has configured: routing rules, a regional SLA policy, a subscriber."""
    from app.directory.models import Territory
    from app.outbox import subscriptions
    from app.outbox.models import SubscriptionCreate
    from app.questions.models import DismissReason, Priority
    from app.routing import rules
    from app.routing import service as routing_service
    from app.routing.triage import Classification
    from app.sla import policies

    now = datetime.now(UTC)
    region = session.exec(select(Territory).where(col(Territory.parent_id).is_(None))).first()
    assert region is not None and region.id is not None
    roads = routing_service.create_category(session, routing_service.CategoryWrite(name="Дороги"))
    for name, keywords, actions in [
        ("Спам", [], rules.RuleActions(dismiss_reason=DismissReason.spam)),
        ("Отопление", ["отопление", "батарея"], rules.RuleActions(priority=Priority.urgent)),
        ("Дороги", ["дорога", "яма"], rules.RuleActions(category_id=roads.id)),
    ]:
        conditions = (
            rules.RuleConditions(classifications=[Classification.spam])
            if not keywords
            else rules.RuleConditions(keywords=keywords)
        )
        routing_service.create_rule(
            session,
            rules.RoutingRuleWrite(name=name, conditions=conditions, actions=actions),
            now,
        )
    policies.create_policy(
        session,
        policies.SlaPolicyCreate(
            name="Регион", territory_id=region.id, effective_from=now - timedelta(days=30)
        ),
        by=None,
        now=now,
    )
    subscriptions.create(
        session,
        SubscriptionCreate(url="https://sed.example.ru/otklik", events=["question.created"]),
        cipher,
        now=now,
    )


def _event_ids(engine: sa.Engine) -> list[int]:
    with Session(engine) as session:
        return [
            i or 0
            for i in session.exec(
                # The deliveries to process (the demo seeds a few settled ones of its own).
                select(InboundEvent.id)
                .where(col(InboundEvent.status) == EventStatus.pending)
                .order_by(col(InboundEvent.id))
            ).all()
        ]


def _baseline_us(engine: sa.Engine, cipher: Cipher) -> float:
    """CPU microseconds per event to parse the stored payloads (secrets decrypted once per page)."""
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
            ).where(col(InboundEvent.status) == EventStatus.pending)
        )
        items = [
            (get_adapter(platform), pages[page_id], body, received_at)
            for platform, page_id, body, received_at in rows
        ]
    t0 = time.process_time()
    for _ in range(5):
        for adapter, secrets, body, received_at in items:
            adapter.parse(secrets, body, received_at)
    return (time.process_time() - t0) / len(items) / 5 * 1e6


def _now() -> datetime:
    return datetime.now(UTC)


def run_once(template: Path, workdir: Path, profile: cProfile.Profile | None = None) -> Run:
    cipher = Cipher(SECRET_KEY)
    # One copy for the one-by-one pass, one for the batched pass.
    copies = []
    for name in ("seq.db", "ing.db"):
        target = workdir / name
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy(template, target)
        copies.append(target)

    engine = make_engine(f"sqlite:///{copies[0]}")
    ids = _event_ids(engine)
    baseline = _baseline_us(engine, cipher)
    counter = _Counter(engine)
    per_event: list[float] = []
    counter.enabled = True
    if profile is not None:
        profile.enable()
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    for event_id in ids:
        t0 = time.perf_counter()
        if not process_one(engine, event_id, cipher, _now):
            raise RuntimeError(f"event {event_id} failed")
        per_event.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    if profile is not None:
        profile.disable()
    counter.enabled = False
    counter.close(engine)
    with Session(engine) as session:
        questions = session.exec(select(sa.func.count()).select_from(Question)).one()
    engine.dispose()

    engine = make_engine(f"sqlite:///{copies[1]}")
    ids = _event_ids(engine)
    batch_counter = _Counter(engine)
    batch_counter.enabled = True
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    while process_pending(engine, cipher, _now):
        pass
    ingest_elapsed = time.perf_counter() - t_start
    batch_cpu = time.process_time() - cpu_start
    batch_counter.close(engine)
    engine.dispose()

    return Run(
        per_event_ms=per_event,
        cpu_ms=cpu / len(ids) * 1000,
        sequential_rate=len(ids) / elapsed,
        batch_rate=len(ids) / ingest_elapsed,
        batch_cpu_ms=batch_cpu / len(ids) * 1000,
        batch_statements=batch_counter.statements / len(ids),
        baseline_us=baseline,
        statements=counter.statements / len(ids),
        flushes=counter.flushes / len(ids),
        questions=questions,
    )


def bench_processing(
    events: int, repeat: int, profile: bool = False, mix: str = "realistic"
) -> None:
    print(
        f"== processing stored deliveries: SQLite, {mix} mix, ~{events} events, "
        f"median of {repeat} =="
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        template = tmpdir / "template.db"
        prepare(template, events, mix=mix)
        profiler = cProfile.Profile() if profile else None
        runs = [run_once(template, tmpdir, profiler) for _ in range(repeat)]
        if profiler is not None:
            stats = pstats.Stats(profiler).sort_stats("cumulative")
            stats.print_stats(60)
    median = statistics.median
    seq = median(r.sequential_rate for r in runs)
    ing = median(r.batch_rate for r in runs)
    ms = median(r.median_ms for r in runs)
    cpu = median(r.cpu_ms for r in runs)
    p99 = median(r.p99_ms for r in runs)
    base = median(r.baseline_us for r in runs)
    # Per-run ratio, then the median: both figures of a ratio come from the same moment.
    ratio = median(r.cpu_ms * 1000 / r.baseline_us for r in runs)
    print(
        f"one by one (process_one)  {seq:7.0f} events/s  median {ms:6.2f} ms  p99 {p99:6.2f} ms  "
        f"CPU {cpu:5.2f} ms/event "
        f"(runs: {', '.join(f'{r.sequential_rate:.0f}' for r in runs)})"
    )
    print(
        f"in batches (processor)    {ing:7.0f} events/s  "
        f"CPU {median(r.batch_cpu_ms for r in runs):5.2f} ms/event, "
        f"{median(r.batch_statements for r in runs):4.1f} SQL statements/event "
        f"(runs: {', '.join(f'{r.batch_rate:.0f}' for r in runs)}; goal >= 1000 on the realistic mix)"
    )
    print(
        f"one by one, per event     {runs[0].statements:7.1f} SQL statements, "
        f"{runs[0].flushes:.1f} ORM flushes ({runs[0].questions} questions from {events} events)"
    )
    print(
        f"baseline: parse only      {base:7.0f} us CPU/event -> processing/parsing CPU ratio {ratio:.0f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of process_one")
    parser.add_argument("--mix", choices=["realistic", "simple"], default="realistic")
    args = parser.parse_args()
    bench_processing(args.events, args.repeat, args.profile, args.mix)


if __name__ == "__main__":
    main()
