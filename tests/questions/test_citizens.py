"""VK citizens get their names from VK users.get, once per NAME_TTL, through a page's token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.jobs.context import JobContext
from app.questions import citizens
from app.questions.models import CitizenName, Message, Question
from tests.conftest import FrozenClock
from tests.factories.directory import cipher, make_page
from tests.factories.questions import first_message, follow_up, make_question

NAMES = {"512348907": ("Ирина", "Смирнова"), "384756120": ("Павел", "Орлов")}


class FakeVk:
    """VK's users.get: names for known ids, or a scripted error."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.tokens: list[str] = []
        self.error: dict[str, object] | None = None
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/method/users.get"
        form = dict(parse_qsl(request.content.decode()))
        self.calls.append(form)
        self.tokens.append(request.headers["authorization"])
        if self.status != 200:
            return httpx.Response(self.status, text="unavailable")
        if self.error is not None:
            return httpx.Response(200, json={"error": self.error})
        users = [
            {"id": int(i), "first_name": NAMES[i][0], "last_name": NAMES[i][1]}
            for i in form["user_ids"].split(",")
            if i in NAMES
        ]
        return httpx.Response(200, json={"response": users})


@pytest.fixture
def vk() -> FakeVk:
    return FakeVk()


@pytest.fixture
def ctx(
    connection: sa.Connection, settings: Settings, clock: FrozenClock, vk: FakeVk
) -> Iterator[JobContext]:
    """A job context whose sessions join the test's transaction (everything rolls back)."""

    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    with httpx.Client(transport=httpx.MockTransport(vk)) as http:
        yield JobContext(
            engine=connection.engine,
            settings=settings,
            clock=clock,
            http=http,
            cipher=cipher(),
            session_factory=sessions,
        )


def _vk_question(session: Session, page_id: int, citizen: str) -> Question:
    return make_question(session, page_id=page_id, citizen_platform_id=citizen, citizen_name="")


def _reload(session: Session, question: Question) -> Question:
    session.expire_all()
    found = session.get(Question, question.id)
    assert found is not None
    return found


def test_names_vk_citizens_and_their_messages(
    session: Session, ctx: JobContext, vk: FakeVk, clock: FrozenClock
) -> None:
    page = make_page(session, access_token="vk1.a.community")
    assert page.id is not None
    irina = _vk_question(session, page.id, "512348907")
    pavel = _vk_question(session, page.id, "384756120")
    unknown = _vk_question(session, page.id, "100")  # a deleted profile: VK gives no name
    later = follow_up(session, irina, at=irina.created_at + timedelta(minutes=5))
    session.commit()

    assert citizens.resolve_citizen_names(ctx) > 0
    assert len(vk.calls) == 1
    assert sorted(vk.calls[0]["user_ids"].split(",")) == ["100", "384756120", "512348907"]
    assert vk.calls[0]["v"] == "5.199"
    assert vk.tokens == ["Bearer vk1.a.community"]
    assert _reload(session, irina).citizen_name == "Ирина Смирнова"
    assert _reload(session, pavel).citizen_name == "Павел Орлов"
    assert _reload(session, unknown).citizen_name == ""  # pages keep showing the id
    assert first_message(session, irina).author_name == "Ирина Смирнова"
    assert session.get(Message, later.id).author_name == "Ирина Смирнова"  # type: ignore[union-attr]

    # Nothing left to do: the next run asks VK nothing and reports nothing handled.
    assert citizens.resolve_citizen_names(ctx) == 0
    assert len(vk.calls) == 1


def test_one_citizen_is_asked_for_once_per_ttl(
    session: Session, ctx: JobContext, vk: FakeVk, clock: FrozenClock
) -> None:
    page = make_page(session)
    assert page.id is not None
    _vk_question(session, page.id, "512348907")
    session.commit()
    citizens.resolve_citizen_names(ctx)
    assert len(vk.calls) == 1

    clock.advance(days=2)
    again = _vk_question(session, page.id, "512348907")  # a new question, same citizen
    session.commit()
    assert citizens.resolve_citizen_names(ctx) == 2  # question and message, from the cache
    assert len(vk.calls) == 1
    assert _reload(session, again).citizen_name == "Ирина Смирнова"

    clock.advance(days=citizens.NAME_TTL.days)
    stale = _vk_question(session, page.id, "512348907")
    session.commit()
    citizens.resolve_citizen_names(ctx)
    assert len(vk.calls) == 2  # the cached name is too old: asked again
    assert _reload(session, stale).citizen_name == "Ирина Смирнова"


def test_page_without_token_or_refused_keeps_the_id_and_waits(
    session: Session, ctx: JobContext, vk: FakeVk, clock: FrozenClock
) -> None:
    no_token = make_page(session, access_token=None)
    refused = make_page(session, access_token="vk1.a.revoked")
    assert no_token.id is not None and refused.id is not None
    q1 = _vk_question(session, no_token.id, "512348907")
    q2 = _vk_question(session, refused.id, "384756120")
    session.commit()
    vk.error = {"error_code": 5, "error_msg": "User authorization failed: invalid access_token"}

    assert citizens.resolve_citizen_names(ctx) == 2
    assert len(vk.calls) == 1  # the page without a token is not even asked
    assert _reload(session, q1).citizen_name == ""
    assert _reload(session, q2).citizen_name == ""
    cached = session.exec(select(CitizenName).order_by(col(CitizenName.platform_id))).all()
    assert [(c.platform_id, c.name) for c in cached] == [("384756120", ""), ("512348907", "")]
    assert all(c.next_check_at == clock() + citizens.REFUSED_RETRY for c in cached)

    assert citizens.resolve_citizen_names(ctx) == 0  # no loop on refusals
    clock.advance(seconds=citizens.REFUSED_RETRY.total_seconds())
    vk.error = None
    citizens.resolve_citizen_names(ctx)
    assert _reload(session, q2).citizen_name == "Павел Орлов"
    assert _reload(session, q1).citizen_name == ""  # still no token


def test_vk_unreachable_is_retried_sooner(
    session: Session, ctx: JobContext, vk: FakeVk, clock: FrozenClock
) -> None:
    page = make_page(session)
    assert page.id is not None
    question = _vk_question(session, page.id, "512348907")
    session.commit()
    vk.status = 502
    # No work done: the job waits its interval, not its short pause after work.
    assert citizens.resolve_citizen_names(ctx) == 0
    assert _reload(session, question).citizen_name == ""
    clock.advance(seconds=citizens.TRANSIENT_RETRY.total_seconds())
    vk.status = 200
    citizens.resolve_citizen_names(ctx)
    assert _reload(session, question).citizen_name == "Ирина Смирнова"
    assert len(vk.calls) == 2


def test_a_citizen_prefers_a_page_with_a_token_and_a_thousand_ids_a_call(
    session: Session, ctx: JobContext, vk: FakeVk
) -> None:
    bare = make_page(session, access_token=None)
    tokened = make_page(session, access_token="vk1.a.second")
    assert bare.id is not None and tokened.id is not None
    _vk_question(session, bare.id, "512348907")
    question = _vk_question(session, tokened.id, "512348907")
    session.commit()
    citizens.resolve_citizen_names(ctx)
    assert vk.tokens == ["Bearer vk1.a.second"]
    assert _reload(session, question).citizen_name == "Ирина Смирнова"


def test_at_most_a_call_of_limit_ids_per_page_and_run(
    session: Session, ctx: JobContext, vk: FakeVk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(citizens, "USERS_GET_LIMIT", 2)  # VK's is 1,000
    page = make_page(session)
    assert page.id is not None
    for citizen in ("700000001", "700000002", "700000003"):
        _vk_question(session, page.id, citizen)
    session.commit()
    citizens.resolve_citizen_names(ctx)
    assert [call["user_ids"] for call in vk.calls] == ["700000001,700000002"]
    citizens.resolve_citizen_names(ctx)
    assert [call["user_ids"] for call in vk.calls][1:] == ["700000003"]
    assert citizens.resolve_citizen_names(ctx) == 0


def test_only_vk_questions_are_looked_up(session: Session, ctx: JobContext, vk: FakeVk) -> None:
    from app.directory.models import Platform

    page = make_page(session, platform=Platform.telegram)
    assert page.id is not None
    session.execute(
        sa.update(Question).values(citizen_name="")
    )  # even a Telegram question without a name
    session.commit()
    assert citizens.resolve_citizen_names(ctx) == 0
    assert vk.calls == []


def test_runs_look_at_new_rows_and_at_every_row_each_full_pass(
    session: Session, ctx: JobContext, vk: FakeVk, clock: FrozenClock
) -> None:
    """Between full passes a run reads only the rows above its marks: a name cached for
    an older question by someone else is written at the next full pass, not each run."""
    page = make_page(session, access_token=None)  # VK is never asked: names stay ids
    assert page.id is not None
    old = _vk_question(session, page.id, "512348907")
    session.commit()
    citizens.resolve_citizen_names(ctx)  # the first two runs look at everything
    citizens.resolve_citizen_names(ctx)
    # Another worker's users.get named the citizen (the cache only, as after a crash).
    session.execute(
        sa.update(CitizenName)
        .where(col(CitizenName.platform_id) == "512348907")
        .values(name="Ирина Смирнова", next_check_at=clock() + citizens.NAME_TTL)
    )
    new = _vk_question(session, page.id, "512348907")
    session.commit()

    assert citizens.resolve_citizen_names(ctx) == 2  # the new question and its message
    assert _reload(session, new).citizen_name == "Ирина Смирнова"
    assert _reload(session, old).citizen_name == ""
    assert first_message(session, old).author_name == ""

    clock.advance(seconds=citizens.FULL_PASS.total_seconds())
    assert citizens.resolve_citizen_names(ctx) == 2
    assert _reload(session, old).citizen_name == "Ирина Смирнова"
    assert first_message(session, old).author_name == "Ирина Смирнова"


@pytest.mark.sqlite
def test_a_run_with_nothing_to_write_takes_no_sqlite_write_lock(
    live_engine: sa.Engine, settings: Settings, clock: FrozenClock
) -> None:
    """The job's reads (a full pass reads every question still showing an id) take no
    write lock: webhooks wait for it. Here another writer holds it throughout."""
    import sqlite3
    import time

    holder = sqlite3.connect(str(live_engine.url.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with httpx.Client(transport=httpx.MockTransport(FakeVk())) as http:
            ctx = JobContext(live_engine, settings, clock, http, cipher())
            started = time.monotonic()
            assert citizens.resolve_citizen_names(ctx) == 0
            assert time.monotonic() - started < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
