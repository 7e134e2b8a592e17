"""Several processors at once, and deliveries out of the platform's order.

Threads of VK comments (a citizen's comment, its edit, a follow-up, the community's
native reply, the follow-up deleted) are stored interleaved, some edits and replies
before the comment they refer to, and processed by two or four workers side by side
(threads of this process, each with its own connections, like worker processes
against one PostgreSQL). Each thread must end as the platform meant it, every
delivery processed once, and no batch may be aborted for a deadlock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.demo import deliveries as d
from app.intake.models import EventStatus, InboundEvent
from app.jobs.context import JobContext
from app.processing import ingest
from app.processing.jobs import retry_events
from app.processing.processor import process_pending
from app.questions.models import Message, MessageSource, Question, QuestionStatus
from tests.factories import deliveries
from tests.factories.deliveries import store_vk
from tests.factories.directory import cipher
from webhooks import PageSecrets

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@dataclass
class Thread:
    post: int
    citizen: str
    comment: int
    follow_up: int
    reply: int

    @property
    def text(self) -> str:
        return f"Когда починят дорогу у дома {self.post}?"


def _threads(count: int) -> list[Thread]:
    return [
        Thread(post=100 + n, citizen=str(300_000_000 + n), comment=1000 + n * 10,
               follow_up=1001 + n * 10, reply=1002 + n * 10)
        for n in range(count)
    ]  # fmt: skip


def _bodies(page: PageSecrets, t: Thread, n: int) -> list[dict[str, Any]]:
    """The thread's deliveries in the platform's order."""
    at = START + timedelta(seconds=n)
    return [
        d.vk_comment(page, t.citizen, t.post, t.comment, t.text, at),
        d.vk_comment(
            page, t.citizen, t.post, t.comment, t.text + " (исправлено)",
            at + timedelta(minutes=1), kind="wall_reply_edit",
        ),
        d.vk_comment(page, t.citizen, t.post, t.follow_up, "Ответьте!", at + timedelta(minutes=2)),
        d.vk_page_comment(
            page, t.citizen, t.post, t.reply, t.comment, "Отремонтируем в мае.",
            at + timedelta(minutes=3),
        ),
        d.vk_comment_deleted(page, t.citizen, t.post, t.follow_up),
    ]  # fmt: skip


def _interleaved(page: PageSecrets, threads: list[Thread], early: int) -> list[dict[str, Any]]:
    """Round-robin over the threads, so each batch holds many threads and each thread
    spans many batches, alternately in opposite orders (what deadlocked two batches
    that took their locks event by event). In the first `early` threads the edit and
    the reply come before the comment."""
    per_thread = [_bodies(page, t, n) for n, t in enumerate(threads)]
    for bodies in per_thread[:early]:
        bodies[:] = [bodies[1], bodies[3], bodies[0], bodies[2], bodies[4]]
    out: list[dict[str, Any]] = []
    for step in range(5):
        row = [bodies[step] for bodies in per_thread]
        out.extend(row if step % 2 == 0 else reversed(row))
    return out


_LEFT = sa.text("SELECT count(*) FROM inbound_event WHERE status IN ('pending', 'waiting')")


def _work(
    engine: sa.Engine, settings: Settings, workers: int, batch: int, timeout: float = 60
) -> list[BaseException]:
    """Run `workers` processors (and the retry job) until nothing is left to do."""
    errors: list[BaseException] = []
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731

    def left() -> int:
        with engine.connect() as conn:
            return int(conn.execute(_LEFT).scalar_one())

    def worker() -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client() as http:
            ctx = JobContext(engine, settings, clock, http, cipher())
            try:
                while time.monotonic() < deadline:
                    handled = process_pending(engine, cipher(), clock, limit=batch)
                    handled += retry_events(ctx)
                    if not handled:
                        if not left():
                            return
                        time.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)

    runners = [threading.Thread(target=worker) for _ in range(workers)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout + 10)
    return errors


def _deadlocks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return int(
            conn.exec_driver_sql(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            ).scalar_one()
        )


def _check(engine: sa.Engine, page_id: int, threads: list[Thread], early: int) -> None:
    with Session(engine) as session:
        statuses = [e.status for e in session.exec(select(InboundEvent))]
        assert statuses.count(EventStatus.processed) == len(threads) * 5, {
            s: statuses.count(s) for s in set(statuses)
        }
        for n, t in enumerate(threads):
            thread_key = f"wall:-{_external(session, page_id)}_{t.post}"
            questions = session.exec(
                select(Question).where(
                    col(Question.page_id) == page_id, col(Question.thread_key) == thread_key
                )
            ).all()
            assert len(questions) == 1, f"thread {t.post}: {len(questions)} questions"
            question = questions[0]
            assert question.text == t.text + " (исправлено)", f"thread {t.post}: edit lost"
            # An early reply may be applied before the follow-up written before it,
            # which then reopens the question, as it would arriving late itself.
            allowed = {QuestionStatus.answered} | (
                {QuestionStatus.in_progress} if n < early else set()
            )
            assert question.status in allowed, f"thread {t.post}: {question.status}"
            messages = session.exec(
                select(Message)
                .where(col(Message.question_id) == question.id)
                .order_by(col(Message.id))
            ).all()
            citizen = [m for m in messages if m.source == MessageSource.citizen]
            assert [m.external_id.rsplit("_", 1)[-1] for m in citizen if m.external_id] == [
                f"{t.post}:{t.comment}",
                f"{t.post}:{t.follow_up}",
            ], f"thread {t.post}: out of order"
            assert citizen[1].deleted_at is not None, f"thread {t.post}: deletion lost"
            assert [m.source for m in messages].count(MessageSource.native) == 1


def _external(session: Session, page_id: int) -> str:
    from app.directory.models import Page

    page = session.get(Page, page_id)
    assert page is not None
    return page.external_id


@pytest.fixture
def vk_page(live_engine: sa.Engine) -> tuple[int, PageSecrets]:
    return deliveries.vk_page(live_engine)


@pytest.fixture
def quick_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "WAITS", (0.05, 0.1, 0.2, 0.4, 0.8, 1.6), raising=False)


@pytest.mark.postgres
@pytest.mark.usefixtures("quick_waits")
@pytest.mark.parametrize("workers", [2, 4])
def test_workers_keep_each_thread_in_order_and_never_deadlock(
    live_engine: sa.Engine,
    settings: Settings,
    vk_page: tuple[int, PageSecrets],
    workers: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    page_id, page = vk_page
    threads = _threads(40)
    store_vk(live_engine, page_id, page, _interleaved(page, threads, early=8))
    deadlocks = _deadlocks(live_engine)
    with caplog.at_level(logging.WARNING, logger="otklik"):
        errors = _work(live_engine, settings, workers, batch=6)
    assert errors == []
    assert not [r for r in caplog.records if "batch processing failed" in r.getMessage()]
    assert _deadlocks(live_engine) == deadlocks
    _check(live_engine, page_id, threads, early=8)


@pytest.mark.usefixtures("quick_waits")
def test_an_edit_a_reply_and_a_deletion_before_their_comment_wait_for_it(
    live_engine: sa.Engine, settings: Settings, vk_page: tuple[int, PageSecrets]
) -> None:
    page_id, page = vk_page
    threads = _threads(3)
    store_vk(live_engine, page_id, page, _interleaved(page, threads, early=3))
    assert _work(live_engine, settings, 1, batch=100) == []
    _check(live_engine, page_id, threads, early=3)
    with Session(live_engine) as session:
        waited = session.exec(select(InboundEvent).where(col(InboundEvent.attempts) > 0)).all()
        assert len(waited) == 6  # each early edit and reply waited once


@pytest.mark.usefixtures("quick_waits")
def test_an_edit_whose_comment_never_comes_is_kept_as_an_orphan_with_the_reason(
    live_engine: sa.Engine, settings: Settings, vk_page: tuple[int, PageSecrets]
) -> None:
    page_id, page = vk_page
    edit = d.vk_comment(page, "300000001", 7, 77, "Исправлено", START, kind="wall_reply_edit")
    store_vk(live_engine, page_id, page, [edit])
    assert _work(live_engine, settings, 1, batch=100, timeout=20) == []
    with Session(live_engine) as session:
        event = session.exec(select(InboundEvent)).one()
        assert event.status == EventStatus.orphaned
        assert event.attempts == len(ingest.WAITS)
        assert "7:77" in (event.last_error or "") and "ожидание истекло" in (event.last_error or "")
        assert session.exec(select(Message)).all() == []


def test_an_edit_that_came_before_its_comment_is_applied_soon_after_it(
    live_engine: sa.Engine, settings: Settings, vk_page: tuple[int, PageSecrets]
) -> None:
    """Deliveries sent side by side may come a few milliseconds out of order: the edit
    waits, and the worker's retry job (at its own cadence, whatever the worker's idle
    interval) applies it soon after its comment, not seconds later."""
    from app.jobs.runner import Runner
    from app.worker import background_jobs

    page_id, page = vk_page
    t = _threads(1)[0]
    comment, edit = _bodies(page, t, 0)[:2]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
    store_vk(live_engine, page_id, page, [edit])
    assert process_pending(live_engine, cipher(), clock) == 1  # the edit waits
    store_vk(live_engine, page_id, page, [comment])
    assert process_pending(live_engine, cipher(), clock) == 1
    slow = settings.model_copy(update={"worker_interval": 5.0})
    [job] = [j for j in background_jobs() if j.name == "retry_events"]
    with httpx.Client() as http:
        runner = Runner(JobContext(live_engine, slow, clock, http, cipher()), [job])
        runner.start()
        try:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                with Session(live_engine) as session:
                    statuses = set(session.exec(select(InboundEvent.status)).all())
                if statuses == {EventStatus.processed}:
                    break
                time.sleep(0.05)
        finally:
            runner.stop()
    assert statuses == {EventStatus.processed}
    with Session(live_engine) as session:
        question = session.exec(select(Question)).one()
        assert "(исправлено)" in question.text
