"""Several processes on one PostgreSQL: two `otklik serve` (two web processes, each with
its worker process) share the load.

- Order: threads of VK comments (a comment, its edit, a follow-up, the community's native
  reply, the follow-up deleted) are delivered in the platform's order, each event of a
  thread to the other server than the one before: every event processed once, and in
  order within its thread (tests/processing/test_workers.py checks each thread).
- Duplicate storm: the same events delivered ten times each, concurrently, by several
  sender processes, to both servers: each message exactly once. They arrive overdue:
  every SLA breach is raised once although both workers watch the clocks.
- Replies: operators' replies are published by whichever worker claims them, once each.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as replies
from app.auth.models import Role
from app.demo import deliveries as d
from app.questions.models import OutboxItem, OutboxStatus, Question
from tests.factories.auth import make_user
from tests.factories.directory import cipher
from tests.processing.test_workers import _bodies, _check, _threads
from tests.reliability.conftest import committed_page, scaled
from tests.reliability.harness import (
    ROOT,
    FakeApi,
    Post,
    Serve,
    deliver,
    save_posts,
    wait_processed,
)
from tests.reliability.test_crash import message_counts
from webhooks import PageSecrets

pytestmark = pytest.mark.postgres


def _post(page: PageSecrets, body: dict[str, object]) -> Post:
    delivery = d.signed(page, body, datetime.now(UTC))
    return Post(f"/webhooks/vk/{page.key}", delivery.body, delivery.headers)


def _in_thread_order(servers: list[Serve], page: PageSecrets, threads: int) -> None:
    """Each thread's events in its order, each to the other server; threads side by side."""
    work = list(enumerate(_threads(threads)))
    lock = threading.Lock()
    failures: list[str] = []

    def run() -> None:
        while True:
            with lock:
                if not work:
                    return
                n, thread = work.pop()
            for j, body in enumerate(_bodies(page, thread, n)):
                server = servers[(n + j) % 2]
                sent = deliver(server.base, [_post(page, body)], threads=1, give_up_after=60)
                if sent.acknowledged != 1:
                    failures.append(f"thread {n} event {j}: {sent}")

    senders = [threading.Thread(target=run) for _ in range(6)]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    assert failures == []


def _storm(servers: list[Serve], page: PageSecrets, events: int, tmp: Path) -> list[dict[str, int]]:
    """`events` overdue comments, each delivered ten times, by four sender processes."""
    at = datetime.now(UTC) - timedelta(days=10)
    posts = [
        _post(
            page,
            d.vk_comment(
                page, str(420_000_000 + n), post=900 + n, comment_id=50_000 + n,
                text=f"Почему не вывозят мусор? ({n})", at=at + timedelta(seconds=n),
            ),
        )
        for n in range(events)
    ]  # fmt: skip
    storm = posts * 10
    random.Random(13).shuffle(storm)
    senders = []
    for k in range(4):
        path = tmp / f"storm{k}.jsonl"
        save_posts(storm[k::4], path)
        senders.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.harness", servers[k % 2].base,
                 str(path), "4"],
                cwd=ROOT, stdout=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    results = []
    for sender in senders:
        out, _ = sender.communicate(timeout=scaled(300, 3600))
        assert sender.returncode == 0
        results.append(json.loads(out))
    return results


def _publish_replies(engine: sa.Engine, page_id: int, count: int) -> list[int]:
    with Session(engine, expire_on_commit=False) as session:
        operator = make_user(session, Role.admin, name="Оператор Анна")
        questions = session.exec(
            select(Question).where(col(Question.page_id) == page_id).order_by(col(Question.id))
        ).all()[:count]
        items = [
            replies.reply(
                session, question, text=f"Вывезем завтра (№{question.id}).", interim=False,
                expected_at=None, by=operator, now=datetime.now(UTC), cipher=cipher(),
            )
            for question in questions
        ]  # fmt: skip
        session.commit()
        return [i.id for i in items if i.id is not None]


def _all_sent(engine: sa.Engine, ids: list[int], timeout: float = 60) -> list[OutboxItem]:
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            items = session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(ids))).all()
        if all(i.status not in (OutboxStatus.pending, OutboxStatus.sending) for i in items):
            return list(items)
        assert time.monotonic() < deadline, [(i.id, i.status) for i in items]
        time.sleep(0.1)


def _sla_alerts(engine: sa.Engine, page_id: int) -> tuple[int, list[tuple[int, str, int]]]:
    """(breaches raised, any (question, kind) raised more than once). The questions have
    one clock each (first response) and one cycle of it: each alert belongs once."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.question_id, t.kind, count(*) FROM timeline_entry t"
                " JOIN question q ON q.id = t.question_id"
                " WHERE q.page_id = :p AND t.kind LIKE 'sla.%'"
                " GROUP BY t.question_id, t.kind"
            ),
            {"p": page_id},
        ).all()
    breaches = sum(n for _, kind, n in rows if kind == "sla.breached")
    return breaches, [(q, k, n) for q, k, n in rows if n != 1]


def test_two_servers_and_two_workers_share_the_load_exactly_once_and_in_order(
    live_engine: sa.Engine,
    serve_factory: Callable[..., Serve],
    fake_api: FakeApi,
    tmp_path: Path,
) -> None:
    threads, events, answered = scaled(16, 100), scaled(100, 1000), scaled(10, 100)
    ordered_id, ordered = committed_page(live_engine)
    stormed_id, stormed = committed_page(live_engine)
    servers = [serve_factory(), serve_factory()]
    for server in servers:
        server.start(wait=False)
    for server in servers:
        server.wait_up()

    started = time.monotonic()
    _in_thread_order(servers, ordered, threads)
    wait_processed(live_engine, threads * 5, timeout=scaled(120, 900))
    _check(live_engine, ordered_id, _threads(threads), early=0)
    ordered_seconds = time.monotonic() - started

    started = time.monotonic()
    sent = _storm(servers, stormed, events, tmp_path)
    wait_processed(live_engine, threads * 5 + events, timeout=scaled(180, 1800))
    storm_seconds = time.monotonic() - started
    assert sum(s["acknowledged"] for s in sent) == events * 10
    counts = message_counts(live_engine, stormed_id)
    assert len(counts) == events and set(counts.values()) == {1}
    with live_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM inbound_event WHERE page_id = :p"), {"p": stormed_id}
        ).scalar_one()
    assert stored == events  # ten deliveries of each, stored once

    # Both workers watch the clocks: every overdue question breached once, no alert twice.
    deadline = time.monotonic() + scaled(60, 600)
    while (alerts := _sla_alerts(live_engine, stormed_id))[0] < events:
        assert time.monotonic() < deadline, f"{alerts[0]} of {events} breaches raised"
        time.sleep(0.2)
    assert alerts == (events, [])

    ids = _publish_replies(live_engine, stormed_id, answered)
    items = _all_sent(live_engine, ids, timeout=scaled(60, 600))
    assert {i.status for i in items} == {OutboxStatus.sent}
    guids = [c.form["guid"] for c in fake_api.published_calls()]
    assert sorted(guids) == sorted(f"otklik-{i}" for i in ids), "a reply sent twice"
    assert _sla_alerts(live_engine, stormed_id)[1] == []
    print(  # noqa: T201 (make soak prints the figures)
        f"\nprocesses: {threads} threads x 5 events in order in {ordered_seconds:.1f} s; "
        f"storm of {events} events x 10 deliveries from 4 processes to 2 servers: "
        f"{sum(s['attempts'] for s in sent)} posts, stored and processed in "
        f"{storm_seconds:.1f} s, each message once; {events} breaches raised once; "
        f"{answered} replies published once"
    )
