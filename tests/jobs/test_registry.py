"""Which jobs a worker runs is wired in one place, app.main (the worker command uses it)."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app import main, worker
from app.core.config import Settings
from app.jobs import upkeep
from tests.conftest import FrozenClock


def _job_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("otklik-job-")}


def test_the_registry_names_every_background_job() -> None:
    names = [job.name for job in worker.background_jobs()]
    assert names == [
        "retry_events",
        "statistics",
        "outbox",
        "sla_sweep",
        "sla_notify",
        "citizen_names",
        "alert_bot",
        "weekly_reports",
        "report_facts",
        "personal_data",
        "old_deliveries",
    ]


def test_the_app_run_alone_runs_every_job_until_it_stops(
    live_engine: sa.Engine, settings: Settings, clock: FrozenClock
) -> None:
    app = main.create_app(
        settings, engine=live_engine, clock=clock, run_worker=True, process_events=False
    )
    with TestClient(app):
        assert _job_threads() == {f"otklik-job-{job.name}" for job in worker.background_jobs()}
    assert _job_threads() == set()


def test_the_statistics_job_waits_its_interval_after_it_analysed_something() -> None:
    # The report marks churn: they pass the thresholds again within seconds, and a job
    # run again at once (busy_pause 0) vacuumed them 157 times in a 40 s bench run.
    job = next(job for job in worker.background_jobs() if job.name == "statistics")
    assert job.interval == job.busy_pause == upkeep.INTERVAL
