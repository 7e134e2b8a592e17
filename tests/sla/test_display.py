"""What a page shows of a question's SLA: the most urgent clock and its working time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from app.sla import display
from app.sla import service as sla_service
from tests.factories.questions import make_question, native_reply

# Tuesday 10 March 2026, 10:00 in Chelyabinsk (UTC+5); the office works 09:00-18:00.
CREATED = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)


def test_running_first_response_shows_working_time_left(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    assert question.id is not None
    now = CREATED + timedelta(hours=2)  # 12:00: first response due at 18:00
    shown = display.urgencies(session, [question.id], now)[question.id]
    assert shown.state == "running"
    assert shown.target == "first_response"
    assert shown.working_minutes == 6 * 60
    assert shown.wall_minutes == 6 * 60


def test_near_deadline_reads_warning_before_the_watcher_runs(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    assert question.id is not None
    now = CREATED + timedelta(hours=7)  # 17:00, past 75 % of the eight hours
    shown = display.urgencies(session, [question.id], now)[question.id]
    assert (shown.state, shown.working_minutes) == ("warning", 60)


def test_overdue_counts_working_time_only(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    assert question.id is not None
    # Wednesday 10:30: due Tuesday 18:00, the night is not working time.
    now = datetime(2026, 3, 11, 5, 30, tzinfo=UTC)
    shown = display.urgencies(session, [question.id], now)[question.id]
    assert shown.state == "breached" and shown.overdue
    assert shown.working_minutes == 90
    assert shown.wall_minutes == 16 * 60 + 30


def test_answered_question_shows_the_outcome(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    native_reply(session, question, at=CREATED + timedelta(hours=1))
    assert question.id is not None
    shown = display.urgencies(session, [question.id], CREATED + timedelta(days=3))[question.id]
    assert (shown.state, shown.target, shown.working_minutes) == ("met", "first_response", 60)


def test_late_answer_reads_missed(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    native_reply(session, question, at=datetime(2026, 3, 11, 5, 0, tzinfo=UTC))
    assert question.id is not None
    shown = display.urgencies(session, [question.id], CREATED + timedelta(days=3))[question.id]
    assert shown.state == "missed"


def test_waiting_for_the_citizen_pauses_the_final_answer(session: Session) -> None:
    question = make_question(session, created_at=CREATED)
    # An interim answer settles the first response; the final answer still runs.
    sla_service.on_response(session, question, at=CREATED + timedelta(hours=1), interim=True)
    at = CREATED + timedelta(hours=2)
    old = str(question.status)
    question.status = "waiting_citizen"  # type: ignore[assignment]
    sla_service.on_status_change(session, question, old=old, new="waiting_citizen", at=at)
    assert question.id is not None
    shown = display.urgencies(session, [question.id], at + timedelta(days=2))[question.id]
    assert shown.state == "paused"
    assert shown.target == "final_answer"
    # Seven working days of nine hours, less the two hours before the pause.
    assert shown.working_minutes == 7 * 9 * 60 - 120


def test_gratitude_has_no_clock(session: Session) -> None:
    question = make_question(session, created_at=CREATED, text="Спасибо большое!")
    assert question.id is not None
    assert display.urgencies(session, [question.id], CREATED)[question.id] == display.NONE


def test_a_page_of_rows_reads_its_clocks_in_one_query(session: Session) -> None:
    ids = [make_question(session, created_at=CREATED).id for _ in range(5)]
    now = CREATED + timedelta(hours=2)
    display.urgencies(session, [i for i in ids if i], now)  # warms the calendar snapshot
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    bind = session.connection()
    sa.event.listen(bind, "before_cursor_execute", count)
    try:
        shown = display.urgencies(session, [i for i in ids if i], now)
    finally:
        sa.event.remove(bind, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    assert {u.state for u in shown.values()} == {"running"}
