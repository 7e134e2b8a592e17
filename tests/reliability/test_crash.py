"""Crash: `otklik serve` and its worker killed with SIGKILL mid-stream, several times.

A sender posts a stream of signed VK comments and, as VK does, resends every one
not answered `ok`. Meanwhile the server's whole process group is killed outright and
started again. At the end every acknowledged event is exactly one message (none
missing, none twice) and every question has its SLA clocks. A reply whose worker is
killed while the platform holds its answer is published once, never lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as replies
from app.auth.models import Role
from app.demo import deliveries as d
from app.questions.models import OutboxItem, OutboxStatus, Question, QuestionStatus
from tests.factories.auth import make_user
from tests.factories.directory import cipher
from tests.reliability.conftest import scaled
from tests.reliability.harness import (
    FakeApi,
    Post,
    Serve,
    deliver,
    server_env,
    wait_processed,
)
from webhooks import PageSecrets

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def comment_posts(page: PageSecrets, threads: int, per_thread: int = 2) -> list[Post]:
    """`threads` posts, each with `per_thread` comments of one citizen, in stream order."""
    posts = []
    for n in range(per_thread):
        for t in range(threads):
            body = d.vk_comment(
                page,
                str(400_000_000 + t),
                post=500 + t,
                comment_id=10_000 + t * 10 + n,
                text=f"Вопрос {t}.{n}: когда уберут снег во дворе дома {t}?",
                at=START + timedelta(seconds=t, minutes=n),
            )
            delivery = d.signed(page, body, START)
            posts.append(Post(f"/webhooks/vk/{page.key}", delivery.body, delivery.headers))
    return posts


def message_counts(engine: sa.Engine, page_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT external_id, count(*) FROM message WHERE page_id = :p"
                " AND source = 'citizen' GROUP BY external_id"
            ),
            {"p": page_id},
        )
        return {str(k): int(n) for k, n in rows}


def questions_without_clocks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM question q WHERE NOT EXISTS"
                    " (SELECT 1 FROM sla_clock c WHERE c.question_id = q.id)"
                )
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def crash_api() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def crash_serve(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, crash_api: FakeApi
) -> Iterator[Serve]:
    """One server for this module's tests (each start costs seconds); they kill it at will."""
    tmp = tmp_path_factory.mktemp("crash")
    env = server_env(database_url, tmp / "var", OTKLIK_VK_API_URL=crash_api.url)
    serve = Serve(env, tmp / "serve.log").start(wait=False)
    yield serve
    serve.stop()


@pytest.fixture
def fake_api(crash_api: FakeApi) -> FakeApi:
    crash_api.reset()
    return crash_api


def test_every_acknowledged_event_is_one_message_after_repeated_sigkills(
    live_engine: sa.Engine,
    crash_serve: Serve,
    vk_page: tuple[int, PageSecrets],
) -> None:
    page_id, page = vk_page
    threads, kills = scaled(30, 500), scaled(2, 6)
    posts = comment_posts(page, threads)
    serve = crash_serve
    serve.wait_up()
    # Kill at evenly spaced points of the stream, from another thread: the sender goes on
    # posting into the dead port (transport errors), and resends until it gets `ok`.
    marks = [len(posts) * (k + 1) // (kills + 1) for k in range(kills)]
    due = threading.Semaphore(0)
    killed: list[int] = []

    def on_ack(acked: int) -> None:
        if marks and acked >= marks[0]:
            marks.pop(0)
            due.release()

    def killer() -> None:
        for _ in range(kills):
            if not due.acquire(timeout=120):
                return
            serve.kill()
            killed.append(time.monotonic_ns())
            serve.start(wait=False)

    started = time.monotonic()
    assassin = threading.Thread(target=killer)
    assassin.start()
    sent = deliver(serve.base, posts, threads=4, on_ack=on_ack)
    assassin.join(timeout=180)
    assert len(killed) == kills, f"killed {len(killed)} times"
    serve.wait_up()

    assert sent.acknowledged == len(posts)
    assert sent.ok_with_wrong_body == 0
    wait_processed(live_engine, len(posts), timeout=scaled(60, 900))
    elapsed = time.monotonic() - started
    counts = message_counts(live_engine, page_id)
    expected = {
        f"wall:-{page.external_id}_{500 + t}:{10_000 + t * 10 + n}"
        for t in range(threads)
        for n in range(2)
    }
    assert set(counts) == expected, f"missing {sorted(expected - set(counts))[:5]}"
    assert [k for k, n in counts.items() if n != 1] == [], "a message stored twice"
    assert questions_without_clocks(live_engine) == 0
    with Session(live_engine) as session:
        assert len(session.exec(select(Question)).all()) == threads
    print(  # noqa: T201 (make soak prints the figures)
        f"\ncrash: {len(posts)} events, {kills} SIGKILLs, {sent.attempts} posts in "
        f"{elapsed:.1f} s to the last one processed "
        f"({sent.transport_errors} transport errors, refused {sent.refused}); "
        "each acknowledged event exactly one message"
    )


def _replies(engine: sa.Engine, page_ids: list[int]) -> dict[int, tuple[int, int]]:
    """An operator's reply to the question of each page: page id -> (question id, item id)."""
    out = {}
    with Session(engine, expire_on_commit=False) as session:
        operator = make_user(session, Role.admin, name="Оператор Анна")
        for page_id in page_ids:
            question = session.exec(select(Question).where(col(Question.page_id) == page_id)).one()
            item = replies.reply(
                session,
                question,
                text="Здравствуйте! Сделаем сегодня до 18:00.",
                interim=False,
                expected_at=None,
                by=operator,
                now=datetime.now(UTC),
                cipher=cipher(),
            )
            session.flush()
            assert question.id is not None and item.id is not None
            out[page_id] = (question.id, item.id)
        session.commit()
    return out


def _lease_runs_out(engine: sa.Engine) -> None:
    """The sending lease (five minutes) is over: what the clock would do, without the wait."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE outbox_item SET next_attempt_at = :t WHERE status = 'sending'"),
            {"t": datetime.now(UTC) - timedelta(seconds=1)},
        )


def _settled(engine: sa.Engine, item_ids: list[int]) -> list[OutboxItem]:
    deadline = time.monotonic() + 60
    while True:
        with Session(engine) as session:
            items = [session.get(OutboxItem, i) for i in item_ids]
            done = {OutboxStatus.sent, OutboxStatus.failed}
            if all(i is not None and i.status in done for i in items):
                return [i for i in items if i is not None]
            assert time.monotonic() < deadline, [(i.id, i.status) for i in items if i]
        time.sleep(0.1)


def test_a_reply_whose_worker_is_killed_mid_publication_is_published_once(
    live_engine: sa.Engine,
    crash_serve: Serve,
    fake_api: FakeApi,
    vk_page: tuple[int, PageSecrets],
) -> None:
    """VK publishes the comment, then the worker is killed before VK's answer arrives.

    After the sending lease it is sent again with the same guid, VK keeps one comment,
    and the reply is that comment: answered once, one response on the timeline. (On
    Telegram, OK and MAX, which have no idempotency key, such a reply is stopped and the
    operator told to check the page: tests/outbox/test_send_telegram.py.)
    """
    page_id, page = vk_page
    serve = crash_serve
    serve.wait_up()
    sent = deliver(serve.base, comment_posts(page, 1, per_thread=1), threads=1)
    assert sent.acknowledged == 1
    wait_processed(live_engine, 1)
    fake_api.hold.set()  # VK publishes; its answer never reaches the worker
    question_id, item_id = _replies(live_engine, [page_id])[page_id]
    assert fake_api.arrived.wait(30), "the worker never called VK"
    serve.kill()
    fake_api.release()
    assert len(fake_api.comments) == 1
    with Session(live_engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None and item.status == OutboxStatus.sending
    serve.start()
    _lease_runs_out(live_engine)
    (item,) = _settled(live_engine, [item_id])

    assert item.status == OutboxStatus.sent, (item.status, item.error_message)
    calls = fake_api.published_calls()
    assert [c.form["guid"] for c in calls] == [f"otklik-{item_id}"] * 2
    assert len(fake_api.comments) == 1
    assert item.external_id == str(fake_api.comments[f"otklik-{item_id}"])
    with live_engine.connect() as conn:
        responses = conn.execute(
            sa.text(
                "SELECT count(*) FROM timeline_entry WHERE question_id = :q AND kind = 'response'"
            ),
            {"q": question_id},
        ).scalar_one()
    assert responses == 1
    with Session(live_engine) as session:
        question = session.get(Question, question_id)
        assert question is not None and question.status == QuestionStatus.answered
