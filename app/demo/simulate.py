"""`otklik simulate` and the demo's history: traffic through the real ingestion path."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import utcnow
from app.demo import history
from app.demo.traffic import TrafficGenerator
from app.directory import service as directory_service
from app.directory.models import Page
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


def replay_history(settings: Settings, engine: sa.Engine, *, days: int, seed: int = 7) -> int:
    """Live the demo region's last `days` days (:mod:`app.demo.history`): every delivery
    through verify → store → process, every act through the services, with the past's
    times. Returns how many webhook deliveries it took."""
    return history.replay(settings, engine, now=utcnow(), days=days, seed=seed).deliveries
