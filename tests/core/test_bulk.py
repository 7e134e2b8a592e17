"""`bulk.write_changes`: the changed columns of many ORM objects in one UPDATE a table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import bulk
from app.questions.models import Question
from app.sla.models import ClockState, SlaClock, Target
from tests.factories.questions import make_question


def test_changes_are_written_in_one_update_a_table_and_left_clean(session: Session) -> None:
    questions = [make_question(session, text=f"Вопрос {n}") for n in range(2)]
    session.flush()
    ids = [q.id for q in questions]
    start = datetime(2026, 3, 19, 9, 0, tzinfo=UTC)
    for question in questions:
        assert question.id is not None
        session.add(
            SlaClock(
                question_id=question.id,
                target=Target.first_response,
                started_at=start,
                due_at=start + timedelta(hours=8),
                check_at=start + timedelta(hours=6),
                target_minutes=480,
            )
        )
    session.flush()
    clocks = session.exec(select(SlaClock).where(col(SlaClock.question_id).in_(ids))).all()
    assert len(clocks) == 2
    breached = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
    for clock in clocks:
        clock.state = ClockState.breached
        clock.breached_at = breached
        clock.escalation_level = 2
    questions[0].due_at = breached + timedelta(hours=1)
    questions[1].priority = questions[1].priority  # the same value: no change
    text = questions[1].text
    questions[1].text = "Другой текст"
    questions[1].text = text  # set, then set back: no change either

    updates: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    engine = session.connection().engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert bulk.write_changes(session, [*clocks, *questions]) == len(clocks) + 1
        assert len(updates) == 2  # the clocks, then the one question that changed
        assert not any(session.is_modified(o) for o in [*clocks, *questions])
        session.flush()
        assert len(updates) == 2  # nothing left for the ORM to write
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    db = session.connection()
    rows = db.execute(
        sa.select(SlaClock.state, SlaClock.breached_at, SlaClock.escalation_level).where(  # type: ignore[call-overload]
            col(SlaClock.question_id).in_(ids)
        )
    ).all()
    assert {(str(s), lvl) for s, _, lvl in rows} == {("breached", 2)}
    assert all(b is not None and b.replace(tzinfo=b.tzinfo or UTC) == breached for _, b, _ in rows)
    due = db.execute(sa.select(Question.due_at).where(Question.id == ids[0])).scalar_one()  # type: ignore[call-overload, arg-type]
    assert due.replace(tzinfo=due.tzinfo or UTC) == breached + timedelta(hours=1)


def test_among_selects_the_same_rows_as_in_with_one_text_for_any_count(
    session: Session,
) -> None:
    questions = [make_question(session, text=f"Вопрос {n}") for n in range(5)]
    ids = [q.id for q in questions]
    texts = set()
    for chosen in (ids[:1], ids[1:4], ids, []):
        where = bulk.among(session, col(Question.id), chosen)
        query = select(Question.id).where(where).order_by(col(Question.id))
        assert list(session.exec(query)) == sorted(chosen)
        outside = select(Question.id).where(col(Question.id).in_(ids), sa.not_(where))
        assert set(session.exec(outside)) == set(ids) - set(chosen)
        texts.add(str(query.compile(session.get_bind())))
    if session.get_bind().dialect.name == "postgresql":
        # One text, parsed and planned once, whatever the count (an IN list has one a count).
        assert len(texts) == 1 and "= ANY" in texts.pop()


def test_pairs_among_matches_both_columns_together(session: Session) -> None:
    a, b = (make_question(session, text=f"Вопрос {n}") for n in range(2))
    pairs = [(a.id, a.page_id), (b.id, a.page_id)]  # b's pair names a's page
    where = bulk.pairs_among(session, col(Question.id), col(Question.page_id), pairs)
    assert list(session.exec(select(Question.id).where(where))) == [a.id]
    none = bulk.pairs_among(session, col(Question.id), col(Question.page_id), [])
    assert list(session.exec(select(Question.id).where(none))) == []


def test_update_many_writes_only_its_rows_and_finds_them_by_the_key(session: Session) -> None:
    # A table of thousands of rows without statistics, as a young database's or one
    # after a burst: joined only to the JSON's records (guessed at 100), PostgreSQL read
    # the whole table for each update of a few rows.
    probe = sa.Table(
        "bulk_probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )
    db = session.connection()
    probe.create(db)
    db.execute(probe.insert(), [{"id": i, "n": 0} for i in range(1, 5001)])
    rows = [{"id": 17, "n": 1}, {"id": 4242, "n": 2}, {"id": 99999, "n": 3}]  # the last: none
    bulk.update_many(db, probe, rows)
    changed = db.execute(sa.select(probe.c.id, probe.c.n).where(probe.c.n != 0)).all()
    assert sorted(tuple(r) for r in changed) == [(17, 1), (4242, 2)]
    if db.dialect.name == "postgresql":
        sql = bulk.update_sql(probe, "id", ["id", "n"], "rows")
        plan = db.execute(sa.text("EXPLAIN " + sql), {"rows": bulk.rows_json(rows)}).scalars().all()
        assert not any("Seq Scan on bulk_probe" in line for line in plan), plan


def test_rows_json_writes_each_time_as_its_instant(session: Session) -> None:
    utc = datetime(2026, 3, 19, 9, 0, 0, 250000, tzinfo=UTC)
    times = [utc, utc.astimezone(timezone(timedelta(hours=5))), utc.replace(tzinfo=None)]
    text = bulk.rows_json([{"at": t} for t in times])
    assert [datetime.fromisoformat(r["at"]) for r in json.loads(text)] == [utc] * 3
    db = session.connection()
    if db.dialect.name == "postgresql":
        read = db.execute(
            sa.text("SELECT at FROM json_to_recordset(CAST(:rows AS json)) AS r(at timestamptz)"),
            {"rows": text},
        ).scalars()
        assert list(read) == [utc] * 3
