"""The group-commit writer of raw deliveries, and SQLite's write lock shared with processing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.directory.models import Page, Platform
from app.intake.models import EventStatus, InboundEvent
from app.intake.turns import IntakeSignal, intake_signal
from app.intake.writer import Delivery, DeliveryWriter
from app.processing import processor
from tests.conftest import SECRET
from tests.factories.directory import make_page
from tests.live import settle

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def _page(db: Session) -> Page:
    page = make_page(db, platform=Platform.generic)
    db.commit()
    return page


def _delivery(page: Page, key: str) -> Delivery:
    body = json.dumps(
        {
            "id": key,
            "thread_id": f"t-{key}",
            "kind": "message",
            "text": "Когда уберут снег?",
            "author": {"id": f"c-{key}", "name": "Ирина"},
            "sent_at": "2026-03-10T06:59:00+00:00",
        }
    )
    assert page.id is not None
    return Delivery("generic", page.id, key, body.encode(), NOW)


def _stored(db: Session) -> list[str]:
    db.commit()  # a fresh snapshot
    return list(db.exec(select(InboundEvent.delivery_key).order_by(col(InboundEvent.id))).all())


def test_deliveries_that_arrive_together_are_committed_by_one_insert(
    live_engine: sa.Engine, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _page(db)
    writer = DeliveryWriter(live_engine)
    inserts: list[int] = []
    sql = writer._sql
    monkeypatch.setattr(writer, "_sql", lambda rows: inserts.append(rows) or sql(rows))

    async def arrive() -> None:
        keys = [f"k{n}" for n in range(40)] + ["k1", "k2"]  # two copies in the same batch
        await asyncio.gather(*(writer.store(_delivery(page, k)) for k in keys))
        await writer.aclose()

    asyncio.run(arrive())
    assert inserts == [42]
    assert sorted(_stored(db)) == sorted(f"k{n}" for n in range(40))


def test_a_failed_write_fails_every_waiter_and_the_next_write_recovers(
    live_engine: sa.Engine, db: Session
) -> None:
    page = _page(db)
    writer = DeliveryWriter(live_engine)

    async def arrive() -> list[BaseException | None]:
        await writer.store(_delivery(page, "before"))  # the writer has its connection now
        with live_engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE inbound_event RENAME TO inbound_event_away")
        try:
            outcomes = await asyncio.gather(
                *(writer.store(_delivery(page, f"lost{n}")) for n in range(3)),
                return_exceptions=True,
            )
        finally:
            with live_engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE inbound_event_away RENAME TO inbound_event")
        await writer.store(_delivery(page, "after"))
        await writer.aclose()
        return outcomes

    outcomes = asyncio.run(arrive())
    assert len(outcomes) == 3 and all(isinstance(o, Exception) for o in outcomes)
    assert _stored(db) == ["before", "after"]


@pytest.mark.sqlite
def test_intake_waits_for_a_held_sqlite_lock_with_its_flag_raised(
    live_engine: sa.Engine, db: Session
) -> None:
    page = _page(db)
    writer = DeliveryWriter(live_engine)
    flag = intake_signal(live_engine)
    assert flag is not None
    holder = sqlite3.connect(str(live_engine.url.database), isolation_level=None)

    async def arrive() -> None:
        holder.execute("BEGIN IMMEDIATE")  # someone else (processing) has the write lock
        stored = asyncio.ensure_future(writer.store(_delivery(page, "waited")))
        await asyncio.sleep(0.05)
        assert not stored.done()
        assert flag.raised(), "the writer did not ask for its turn"
        holder.execute("COMMIT")
        await asyncio.wait_for(stored, 5)
        assert not flag.raised()
        await writer.aclose()

    try:
        asyncio.run(arrive())
    finally:
        holder.close()
    assert _stored(db) == ["waited"]


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("turn", "waiting"),
    [(0.0, 1), (60.0, processor.SQLITE_CROWD)],
    ids=["its-turn-is-over", "many-deliveries-wait"],
)
def test_processing_commits_after_the_event_in_hand_when_intake_waits(
    live_engine: sa.Engine,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
    turn: float,
    waiting: int,
) -> None:
    import threading

    monkeypatch.setattr(processor, "SQLITE_TURN", turn)
    # Processing stands aside for at most 50 ms, then goes on: on a busy machine this
    # test could look only after that. Here it stands aside until the flag is lowered.
    stand_aside = IntakeSignal.wait_lowered
    monkeypatch.setattr(
        IntakeSignal, "wait_lowered", lambda self, timeout=0.05: stand_aside(self, 30)
    )
    page = _page(db)
    DeliveryWriter(live_engine).write_now([_delivery(page, f"p{n}") for n in range(5)])
    flag = intake_signal(live_engine)
    assert flag is not None
    cipher = Cipher(SECRET)
    flag.raise_(waiting)
    handled: list[int] = []
    worker = threading.Thread(
        target=lambda: handled.append(processor.process_pending(live_engine, cipher, lambda: NOW))
    )
    try:
        worker.start()
        # While intake waits, processing has committed its first event and stands aside.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            db.commit()
            statuses = list(db.exec(select(InboundEvent.status)).all())
            if EventStatus.processed in statuses and not flag.held():
                break
            time.sleep(0.005)
        assert statuses.count(EventStatus.processed) == 1, statuses
        assert not flag.held(), "processing kept the lock while intake waited"
    finally:
        flag.lower()
        worker.join(10)
    # Then it goes on with the rest of its batch.
    assert handled == [5]
    db.commit()
    assert set(db.exec(select(InboundEvent.status)).all()) == {EventStatus.processed}


@pytest.mark.sqlite
def test_processing_keeps_the_lock_for_its_turn_though_intake_waits(
    live_engine: sa.Engine, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webhooks come one at a time: giving way after each event would make every event a
    transaction of its own. Within its turn processing goes on; intake writes after."""
    monkeypatch.setattr(processor, "SQLITE_TURN", 60.0)
    monkeypatch.setattr(processor, "SQLITE_BUDGET", 60.0)
    page = _page(db)
    DeliveryWriter(live_engine).write_now([_delivery(page, f"p{n}") for n in range(5)])
    flag = intake_signal(live_engine)
    assert flag is not None
    flag.raise_()
    try:
        committed: list[int] = []

        def on_commit(conn: sa.Connection) -> None:
            committed.append(1)

        sa.event.listen(live_engine, "commit", on_commit)
        try:
            assert processor.process_pending(live_engine, Cipher(SECRET), lambda: NOW) == 5
        finally:
            sa.event.remove(live_engine, "commit", on_commit)
    finally:
        flag.lower()
    db.commit()
    assert set(db.exec(select(InboundEvent.status)).all()) == {EventStatus.processed}
    assert len(committed) == 1, "processing gave way within its turn"


def test_deliveries_stored_while_no_processor_ran_are_processed_at_start_up(
    live_engine: sa.Engine, db: Session, settings: object
) -> None:
    """A restart between the answer and processing loses nothing."""
    from app.main import create_app

    page = _page(db)
    DeliveryWriter(live_engine).write_now([_delivery(page, "before-restart")])
    app: FastAPI = create_app(settings, engine=live_engine, run_worker=False)  # type: ignore[arg-type]
    with TestClient(app):
        settle(app)
    db.commit()
    [event] = db.exec(select(InboundEvent)).all()
    assert event.status == EventStatus.processed


@pytest.mark.sqlite
def test_intake_waits_while_processing_says_it_holds_the_lock_but_not_forever(
    live_engine: sa.Engine, db: Session
) -> None:
    page = _page(db)
    writer = DeliveryWriter(live_engine)
    flag = intake_signal(live_engine)
    assert flag is not None

    async def arrive() -> None:
        flag.hold()
        try:
            stored = asyncio.ensure_future(writer.store(_delivery(page, "after-release")))
            await asyncio.sleep(0.05)
            assert not stored.done() and flag.raised()
        finally:
            flag.release()
        await asyncio.wait_for(stored, 5)
        assert not flag.raised()
        # A worker killed mid-batch leaves the byte set: intake tries regardless, soon.
        flag.hold()
        try:
            await asyncio.wait_for(writer.store(_delivery(page, "left-set")), 2)
        finally:
            flag.release()
        await writer.aclose()

    asyncio.run(arrive())
    assert _stored(db) == ["after-release", "left-set"]
