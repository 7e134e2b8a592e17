"""`otklik worker --only processing` and `--only jobs`: one process does one half.

Run as the real command in its own process: the jobs half runs the background jobs
(each records its run in `job_stat`) and leaves stored deliveries pending; the
processing half processes them and runs no job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.core import migrate
from app.core.db import make_engine
from app.demo import deliveries as d
from app.directory import service as directory_service
from app.intake.writer import Delivery, DeliveryWriter
from tests.factories.directory import TEST_SECRET, cipher, make_page

_PENDING = sa.text("SELECT count(*) FROM inbound_event WHERE status = 'pending'")
_QUESTIONS = sa.text("SELECT count(*) FROM question")
_JOB_RUNS = sa.text("SELECT count(*) FROM job_stat")


def _count(engine: sa.Engine, query: sa.TextClause) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _worker(url: str, tmp_path: Path, part: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=url,
        OTKLIK_VAR_DIR=str(tmp_path / "var"),
        OTKLIK_SECRET_KEY=TEST_SECRET,
        OTKLIK_LOG_LEVEL="WARNING",
        OTKLIK_WORKER_INTERVAL="0.2",
    )
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--only", part], env=env)


def _until(check: object, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    return process.wait(timeout=60)


@pytest.mark.sqlite_run
def test_only_jobs_then_only_processing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'parts.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        page = make_page(session)
        assert page.id is not None
        page_id = page.id
        secrets = directory_service.page_secrets(page, cipher())
        session.commit()
    at = datetime.now(UTC) - timedelta(hours=1)
    bodies = [
        d.vk_comment(secrets, str(500 + n), 40 + n, 900 + n, f"Где пункт приёма {n}?", at)
        for n in range(3)
    ]
    DeliveryWriter(engine).write_now(
        [Delivery("vk", page_id, b["event_id"], d.signed(secrets, b, at).body, at) for b in bodies]
    )

    jobs = _worker(url, tmp_path, "jobs")
    try:
        assert _until(lambda: _count(engine, _JOB_RUNS) > 0), "the jobs half ran no job"
        time.sleep(1.0)  # long enough for a processor, had one started, to take them
        assert _count(engine, _PENDING) == 3
    finally:
        assert _stop(jobs) == 0
    runs = _count(engine, _JOB_RUNS)

    processing = _worker(url, tmp_path, "processing")
    try:
        assert _until(lambda: _count(engine, _PENDING) == 0), "nothing was processed"
    finally:
        assert _stop(processing) == 0
    assert _count(engine, _QUESTIONS) == 3
    assert _count(engine, _JOB_RUNS) == runs  # no job ran in the processing half
    engine.dispose()
