"""`otklik simulate` and the demo's history: traffic through the real ingestion path."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import utcnow
from app.demo.traffic import Delivery as TrafficDelivery
from app.demo.traffic import TrafficGenerator, business_moments
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake.receive import KnownPage, check
from app.intake.writer import Delivery, DeliveryWriter
from app.processing.processor import process_pending
from webhooks import PageSecrets


def load_pages(engine: sa.Engine, cipher: Cipher) -> list[tuple[int, PageSecrets]]:
    with Session(engine) as session:
        pages = session.exec(
            select(Page).where(col(Page.is_active).is_(True)).order_by(col(Page.id))
        ).all()
        return [(p.id or 0, directory_service.page_secrets(p, cipher)) for p in pages]


@dataclass
class SimulationReport:
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat) if lat else 0.0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"sent {self.sent} deliveries ({codes}); transport errors {self.errors}; "
            f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )


def run(
    base_url: str,
    pages: list[PageSecrets],
    *,
    rate: float,
    duration: float,
    seed: int | None = None,
) -> SimulationReport:
    """Post signed traffic at `rate` deliveries per second for `duration` seconds."""
    generator = TrafficGenerator(pages, seed=seed)
    report = SimulationReport()
    interval = 1.0 / rate
    started = time.monotonic()
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=10.0) as client:
        n = 0
        while (elapsed := time.monotonic() - started) < duration:
            target = n * interval
            if target > elapsed:
                time.sleep(target - elapsed)
            delivery = generator.next(utcnow())
            t0 = time.perf_counter()
            try:
                response = client.post(
                    f"/webhooks/{delivery.platform}/{delivery.key}",
                    content=delivery.body,
                    headers=delivery.headers,
                )
                report.statuses[response.status_code] = (
                    report.statuses.get(response.status_code, 0) + 1
                )
                report.latencies_ms.append((time.perf_counter() - t0) * 1000)
            except httpx.HTTPError:
                report.errors += 1
            report.sent += 1
            n += 1
    return report


def replay_history(
    settings: Settings, engine: sa.Engine, *, days: int, per_day: int = 40, seed: int = 7
) -> int:
    """Feed `days` of traffic through verify → store → process, with platform times in the past.

    Every delivery goes through the receiver's own check and writer, then the
    ingestion service, exactly as a webhook would; nothing is written directly.
    """
    cipher = Cipher(settings.resolved_secret_key())
    pages = load_pages(engine, cipher)
    by_key = {secrets.key: (page_id, secrets) for page_id, secrets in pages}
    generator = TrafficGenerator([s for _, s in pages], seed=seed)
    rng = random.Random(seed)
    writer = DeliveryWriter(engine)
    count = 0
    for moment in business_moments(days, per_day, utcnow(), rng):
        received = moment + timedelta(seconds=rng.uniform(0.2, 3.0))
        writer.write_now([verified(by_key, generator.next(moment), received)])
        # Processed at its receipt time: SLA clocks start in the past like the traffic.
        process_pending(engine, cipher, _fixed(received))
        count += 1
    return count


def verified(
    pages: dict[str, tuple[int, PageSecrets]], delivery: TrafficDelivery, received: datetime
) -> Delivery:
    """A generated delivery verified by the receiver's own check, ready to store.

    `pages`: page key -> (page id, secrets), as `load_pages` gives them.
    """
    page_id, secrets = pages[delivery.key]
    known = KnownPage(id=page_id, platform=secrets.platform, secrets=secrets, active=True)
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    checked = check(known, headers, delivery.body, received)
    if not isinstance(checked, tuple):
        raise RuntimeError(f"simulated delivery refused: {checked.status_code}")
    return checked[0]


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at
