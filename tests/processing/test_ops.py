"""`/metrics` and `/readyz`: processing's lag and backlog, from the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory.models import Platform
from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext
from app.jobs.runner import Job, run_recorded
from app.main import create_app
from tests.conftest import SECRET, FrozenClock
from tests.factories.directory import make_page


@pytest.fixture
def ops(settings: Settings, live_engine: sa.Engine, clock: FrozenClock) -> Iterator[TestClient]:
    """The app with no processor of its own: the deliveries stay as stored."""
    app = create_app(
        settings, engine=live_engine, clock=clock, run_worker=False, process_events=False
    )
    with TestClient(app) as client:
        yield client


def _store(engine: sa.Engine, clock: FrozenClock, *, age: timedelta, status: EventStatus) -> None:
    with Session(engine) as session:
        page = make_page(session, platform=Platform.generic)
        assert page.id is not None
        session.add(
            InboundEvent(
                platform="generic",
                page_id=page.id,
                delivery_key=f"d-{status}-{age}",
                body=json.dumps({"id": "x"}).encode(),
                received_at=clock() - age,
                status=status,
                processed_at=clock() - age if status == EventStatus.processed else None,
            )
        )
        session.commit()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_readyz_is_degraded_while_processing_lags(
    ops: TestClient, live_engine: sa.Engine, clock: FrozenClock, settings: Settings
) -> None:
    assert ops.get("/readyz").json() == {"status": "ready", "processing_lag_seconds": 0}
    _store(live_engine, clock, age=timedelta(seconds=30), status=EventStatus.pending)
    ready = ops.get("/readyz")
    assert ready.json()["status"] == "ready"
    clock.advance(seconds=settings.ready_max_lag)
    degraded = ops.get("/readyz")
    assert degraded.status_code == 200  # still takes webhooks
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["processing_lag_seconds"] == 30 + settings.ready_max_lag


def test_metrics_count_what_every_process_left_in_the_database(
    ops: TestClient, live_engine: sa.Engine, clock: FrozenClock, settings: Settings
) -> None:
    _store(live_engine, clock, age=timedelta(minutes=2), status=EventStatus.pending)
    _store(live_engine, clock, age=timedelta(minutes=1), status=EventStatus.waiting)
    _store(live_engine, clock, age=timedelta(seconds=10), status=EventStatus.processed)
    _store(live_engine, clock, age=timedelta(minutes=5), status=EventStatus.processed)
    with httpx.Client() as http:
        ctx = JobContext(live_engine, settings, clock, http, Cipher(SECRET))
        recorded: dict[str, float] = {}
        assert run_recorded(ctx, Job("sla_sweep", lambda _: 3), recorded) == 3
        assert run_recorded(ctx, Job("sla_sweep", lambda _: 1), recorded) == 1
        assert run_recorded(ctx, Job("outbox", _fail), recorded) == -1

    response = ops.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'otklik_deliveries{status="pending"} 1' in text
    assert 'otklik_deliveries{status="waiting"} 1' in text
    assert 'otklik_deliveries{status="failed"} 0' in text
    assert _sample(text, "otklik_deliveries_oldest_pending_seconds") == 120
    assert _sample(text, "otklik_deliveries_processed_last_minute") == 1
    assert 'otklik_job_runs_total{job="sla_sweep"} 2' in text
    assert 'otklik_job_last_run_handled{job="sla_sweep"} 1' in text
    assert 'otklik_job_failures_total{job="outbox"} 1' in text
    assert "# TYPE otklik_outbox_items gauge" in text


def _fail(ctx: JobContext) -> int:
    raise RuntimeError("platform down")
