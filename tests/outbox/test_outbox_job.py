"""The outbox as the worker runs it: the registered job, with its own sessions."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from app.auth.models import Role
from app.core.config import Settings
from app.jobs.context import JobContext
from app.jobs.runner import run_once
from app.outbox.sender import send_outbox
from app.questions.models import OutboxStatus
from app.worker import background_jobs
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.outbox.outbox_helpers import CIPHER, FakePlatform, items_of, reply, vk_ok, vk_wall


def test_the_worker_runs_the_outbox_on_committed_data(
    live_engine: sa.Engine, db: Session, settings: Settings, clock: FrozenClock
) -> None:
    """The registered job with its real sessions (no test transaction in between)."""
    (job,) = [job for job in background_jobs() if job.name == "outbox"]
    assert job.run is send_outbox
    question = vk_wall(db, clock)
    reply(db, question, make_user(db, Role.admin, password=None), clock)
    fake = FakePlatform([vk_ok({"comment_id": 9195})])
    ctx = JobContext(
        engine=live_engine,
        settings=settings,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(fake)),
        cipher=CIPHER,
    )
    assert run_once(ctx, job) == 1
    assert [call.path for call in fake.calls] == ["/method/wall.createComment"]
    db.expire_all()
    assert items_of(db, question)[0].status == OutboxStatus.sent
    assert run_once(ctx, job) == 0  # nothing left: the runner waits its interval
