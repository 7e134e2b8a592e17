"""The report facts and their daily rollup stay current through every kind of change,
whichever code makes it (the triggers mark the question; a report folds it in), and
they agree with a rebuild from scratch and with the path that reads the facts alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.answering import service as answering
from app.answering.models import StatusChange
from app.core.config import Settings
from app.reports import figures, fold, percentiles
from app.reports.models import ReportDay, ReportDirty, ReportFact
from app.reports.population import ReportFilter
from app.routing import service as routing
from app.sla import watcher
from tests.conftest import FrozenClock
from tests.outbox.outbox_helpers import (
    FakePlatform,
    job_context,
    reply,
    run,
    vk_ok,
    vk_wall,
)
from tests.reports import world

# March 2026 in the world's zone (UTC+5): whole local days, so the rollup answers.
MARCH = ReportFilter(
    datetime(2026, 2, 28, 19, tzinfo=UTC), datetime(2026, 3, 31, 19, tzinfo=UTC), group_by="total"
)
NOW = datetime(2026, 3, 20, 5, tzinfo=UTC)
GROUPS = ("total", "institution", "page", "sector", "territory", "classification", "day", "week")


def _report(session: Session, user: Any, f: ReportFilter) -> dict[str, dict[str, Any]]:
    rows = figures.sla_report(session, user, f, now=NOW, compare=True)
    return {r.key: r.model_dump() for r in rows}


def _consistent(session: Session, user: Any) -> dict[str, Any]:
    """Every grouping folded in place equals a rebuild from scratch, and the rollup's
    answer equals the facts' own (a period a second short of whole days); returns the
    total row."""
    folded = {g: _report(session, user, replace(MARCH, group_by=g)) for g in GROUPS}
    assert session.execute(sa.select(sa.func.count()).select_from(ReportDirty)).scalar_one() == 0
    fold.rebuild(session)
    for g in GROUPS:
        f = replace(MARCH, group_by=g)
        assert _report(session, user, f) == folded[g], g
        uneven = replace(f, start=f.start + timedelta(seconds=1))
        assert _report(session, user, uneven) == folded[g], g
    return folded["total"]["total"]


def _total(session: Session, user: Any) -> dict[str, Any]:
    return _report(session, user, MARCH)["total"]


@pytest.fixture
def w(session: Session, settings: Settings) -> dict[str, Any]:
    built = world.build(session, settings)
    fold.refresh(session)
    return built


def test_the_world_is_known_and_the_rollup_holds_it(session: Session, w: dict[str, Any]) -> None:
    total = _consistent(session, w["boss"])
    assert (total["questions"], total["answered"], total["on_time"], total["late"]) == (7, 4, 3, 2)
    assert (total["dismissed"], total["transferred_out"]) == (1, 1)
    # One fact per question; the rollup sums them (the February one too).
    count = session.execute(sa.select(sa.func.count()).select_from(ReportFact)).scalar_one()
    summed = session.execute(sa.select(sa.func.sum(ReportDay.questions))).scalar_one()
    assert count == summed == 8


def test_a_new_question_counts_at_once(session: Session, w: dict[str, Any]) -> None:
    before = _total(session, w["boss"])
    world.question(session, w["clinic"].id)
    after = _total(session, w["boss"])
    assert after["questions"] == before["questions"] + 1
    assert after["open"] == before["open"] + 1
    assert _consistent(session, w["boss"]) == after


def test_a_native_answer_counts_at_once(session: Session, w: dict[str, Any]) -> None:
    q = world.question(session, w["clinic"].id)
    before = _total(session, w["boss"])
    world.answer(session, q, world.local(10, 12))  # 120 working minutes: met
    after = _total(session, w["boss"])
    assert after["answered"] == before["answered"] + 1
    assert after["answered_native"] == before["answered_native"] + 1
    assert after["on_time"] == before["on_time"] + 1
    assert after["median_first_response_working_minutes"] == 300.0  # 60 120 300 420 1140
    assert _consistent(session, w["boss"]) == after


def test_an_otklik_answer_counts_when_published(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    w: dict[str, Any],
) -> None:
    q = vk_wall(session, clock)
    session.commit()
    before = _total(session, w["boss"])
    reply(session, q, w["boss"], clock)
    queued = _total(session, w["boss"])
    # Queued, not yet published: not an answer yet.
    assert (queued["answered"], queued["questions"]) == (before["answered"], before["questions"])
    run(connection, settings, clock, FakePlatform([vk_ok({"comment_id": 9195})]))
    after = _total(session, w["boss"])
    assert after["answered"] == before["answered"] + 1
    assert after["answered_otklik"] == before["answered_otklik"] + 1
    assert _consistent(session, w["boss"]) == after


def test_a_breach_counts_when_the_watcher_sees_it(
    session: Session, settings: Settings, w: dict[str, Any]
) -> None:
    q = world.question(session, w["clinic"].id, created_at=world.local(16, 10))
    before = _total(session, w["boss"])
    watcher.sweep(session, world.local(19, 10), settings)
    session.refresh(q)
    after = _total(session, w["boss"])
    assert after["breached"] == before["breached"] + 1
    assert after["late"] == before["late"] + 1
    assert _consistent(session, w["boss"]) == after


def test_a_transfer_is_charged_to_the_queue_that_held_it(
    session: Session, w: dict[str, Any]
) -> None:
    q = world.question(session, w["clinic"].id)
    by_inst = _report(session, w["boss"], replace(MARCH, group_by="institution"))
    clinic = str(w["clinic"].id)
    routing.transfer(
        session,
        q,
        institution_id=w["school"].id,
        reason="Не сюда",
        by=w["boss"],
        now=world.local(10, 13),
    )
    after = _report(session, w["boss"], replace(MARCH, group_by="institution"))
    assert after[clinic]["transferred_out"] == by_inst[clinic]["transferred_out"] + 1
    assert (
        after[clinic]["wrong_queue_wall_minutes"]
        == by_inst[clinic]["wrong_queue_wall_minutes"] + 180
    )
    assert after[clinic]["questions"] == by_inst[clinic]["questions"] - 1
    school = str(w["school"].id)
    assert after[school]["questions"] == by_inst[school]["questions"] + 1
    _consistent(session, w["boss"])


def test_a_dismissal_and_a_reopening_count_at_once(session: Session, w: dict[str, Any]) -> None:
    q = world.question(session, w["clinic"].id)
    before = _total(session, w["boss"])
    routing.dismiss(session, q, reason="off_topic", note=None, by=w["boss"], now=NOW)
    dismissed = _total(session, w["boss"])
    assert dismissed["dismissed"] == before["dismissed"] + 1
    assert dismissed["dismissed_by_reason"] == {**before["dismissed_by_reason"], "off_topic": 1}
    assert dismissed["open"] == before["open"] - 1
    assert _consistent(session, w["boss"]) == dismissed
    answering.set_status(session, q, StatusChange.reopen, by=w["boss"], now=NOW)
    reopened = _total(session, w["boss"])
    assert reopened["dismissed"] == before["dismissed"]
    assert reopened["open"] == before["open"]
    assert reopened["dismissed_by_reason"] == before["dismissed_by_reason"]
    assert _consistent(session, w["boss"]) == reopened


@pytest.mark.parametrize(("rebuild_from", "chunk"), [(5, 5000), (10**9, 3)])
def test_a_backlog_of_marks_is_rebuilt_or_folded_in_chunks_exactly(
    session: Session,
    w: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    rebuild_from: int,
    chunk: int,
) -> None:
    """Every question marked at once (a fresh upgrade marks them all): past
    REBUILD_FROM one pass rebuilds everything, else chunks are folded."""
    expected = _report(session, w["boss"], replace(MARCH, group_by="institution"))
    monkeypatch.setattr(fold, "REBUILD_FROM", rebuild_from)
    monkeypatch.setattr(fold, "CHUNK", chunk)
    session.execute(sa.delete(ReportFact))
    session.execute(sa.delete(ReportDay))
    question = sa.table("question", sa.column("id"))
    session.execute(
        sa.insert(ReportDirty).from_select(
            ["question_id", "marks"], sa.select(question.c.id, sa.literal(1))
        )
    )
    assert fold.refresh(session) == 8
    assert _report(session, w["boss"], replace(MARCH, group_by="institution")) == expected


def test_the_worker_folds_marks_in_short_transactions(
    session: Session,
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    w: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fold, "JOB_CHUNK", 2)
    for _ in range(3):
        world.question(session, w["clinic"].id)
    session.commit()
    ctx = job_context(connection, settings, clock, FakePlatform([vk_ok({})]))
    assert [fold.fold_marks(ctx) for _ in range(3)] == [2, 1, 0]
    assert not fold.pending(session)
    assert _consistent(session, w["boss"])["questions"] == 10


def test_percentiles_are_kept_until_a_fact_in_scope_changes(
    session: Session, w: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The percentiles' sort runs again only when the rollup's mark of the scope and
    period moves: a change to any of its questions rewrites their days' rows with a new
    stamp. Out of scope (February) or nothing changed: the answer kept is given."""
    sorts: list[int] = []
    real = percentiles._percentiles

    def counted(*args: Any, **kwargs: Any) -> Any:
        sorts.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(percentiles, "_percentiles", counted)
    percentiles.clear_cache()
    first = _total(session, w["boss"])
    runs = len(sorts)
    assert runs == 2  # this period's and the previous one's
    assert _total(session, w["boss"]) == first
    assert len(sorts) == runs  # kept
    q = world.question(session, w["clinic"].id)
    world.answer(session, q, world.local(10, 12))  # 120 working minutes: met
    after = _total(session, w["boss"])
    assert len(sorts) == runs + 1  # March's again; February's kept
    assert after["median_first_response_working_minutes"] == 300.0  # 60 120 300 420 1140
    assert (
        after["median_first_response_working_minutes"]
        != first["median_first_response_working_minutes"]
    )
    # A question of February changes February's mark (the previous period), not March's.
    february = datetime(2026, 2, 20, 5, tzinfo=UTC)  # 10:00 local
    old = world.question(session, w["clinic"].id, created_at=february)
    world.answer(session, old, february + timedelta(hours=2))
    assert _total(session, w["boss"])["questions"] == after["questions"]
    assert len(sorts) == runs + 2
    percentiles.clear_cache()
    assert _total(session, w["boss"])["median_first_response_working_minutes"] == 300.0


@pytest.mark.postgres
def test_the_workers_fold_does_not_wait_for_another(live_engine: sa.Engine) -> None:
    with Session(live_engine) as session:
        session.add(ReportDirty(question_id=987654, marks=1))  # a question since deleted
        session.commit()
    with live_engine.connect() as other:  # another worker, folding
        other.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": fold._LOCK})
        with Session(live_engine) as session:
            assert fold.refresh(session, limit=10, wait=False) == 0
            assert fold.pending(session)
            session.rollback()
        other.rollback()
    with Session(live_engine) as session:
        assert fold.refresh(session, limit=10, wait=False) == 1
        session.commit()
        assert not fold.pending(session)
