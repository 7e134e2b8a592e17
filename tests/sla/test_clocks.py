"""SLA clocks: defaults, policy versions, responses, pauses, interim answers, stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.questions.models import Priority, Question, QuestionStatus
from app.routing import service as routing
from app.routing.rules import RoutingRuleWrite
from app.sla import service as sla
from app.sla.models import ClockState, SlaClock, Target
from app.sla.policies import SlaPolicyCreate, create_policy, resolve_policy
from tests.factories.auth import auth_headers, make_user
from tests.factories.directory import make_institution, make_territory
from tests.factories.questions import make_question

# 2026-03-10 is a Tuesday; Yekaterinburg is UTC+5, so 05:00 UTC is 10:00 local.
T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    """A March 2026 instant given as Yekaterinburg wall time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=5)


def _clocks(session: Session, question: Question) -> dict[Target, SlaClock]:
    return sla.clocks_of(session, question)


def _new(session: Session, **overrides: Any) -> Question:
    """A citizen's question at T0, processed three seconds later."""
    return make_question(session, created_at=T0, now=T0 + timedelta(seconds=3), **overrides)


def _rule(session: Session, actions: dict[str, Any]) -> None:
    """A routing rule for the factory's default text (about a road)."""
    rule = RoutingRuleWrite.model_validate(
        {"name": "Дороги", "conditions": {"keywords": ["дорога"]}, "actions": actions}
    )
    routing.create_rule(session, rule, T0)


# Texts triage does not take for a question or a complaint.
_NOT_ANSWERABLE = {
    "gratitude": "Огромное спасибо аварийной службе, всё починили",
    "other": "Хорошая погода сегодня",
    "spam": "Заработок от 100000 в день https://x.example https://y.example",
}


def test_builtin_defaults_count_working_hours_of_the_territory(session: Session) -> None:
    question = _new(session)
    clocks = _clocks(session, question)
    first, final = clocks[Target.first_response], clocks[Target.final_answer]
    assert question.policy_id is None
    assert first.state == ClockState.running
    assert first.target_minutes == 480
    assert first.due_at == _local(10, 18)  # 8 working hours of a 09-18 day
    assert first.warn_at == _local(10, 16)  # 75 %: six hours later, the same day
    assert first.check_at == first.warn_at
    assert final.target_minutes == 7 * 9 * 60
    assert final.due_at == _local(19, 10)  # seven working days later, the same hour
    assert Target.next_response not in clocks
    assert question.due_at == first.due_at


def test_urgent_questions_get_the_shorter_target(session: Session) -> None:
    _rule(session, {"priority": "urgent"})
    question = _new(session)
    assert question.priority == Priority.urgent
    first = _clocks(session, question)[Target.first_response]
    assert first.target_minutes == 240
    assert first.due_at == _local(10, 14)


@pytest.mark.parametrize("classification", ["gratitude", "other", "spam"])
def test_only_questions_and_complaints_start_clocks(session: Session, classification: str) -> None:
    question = _new(session, text=_NOT_ANSWERABLE[classification])
    assert question.classification == classification
    assert _clocks(session, question) == {}
    assert question.due_at is None


def test_every_russian_time_zone_is_the_territory_s_own(session: Session) -> None:
    territory = make_territory(session, timezone="Asia/Kamchatka")  # UTC+12
    institution = make_institution(session, territory_id=territory.id)
    # 05:00 UTC is 17:00 in Kamchatka: one working hour left that day.
    question = _new(session, institution_id=institution.id)
    first = _clocks(session, question)[Target.first_response]
    # 60 minutes on Tuesday, 420 on Wednesday from 09:00: Wednesday 16:00 local.
    assert first.due_at == datetime(2026, 3, 11, 4, 0, tzinfo=UTC)


def test_the_most_specific_policy_wins(session: Session) -> None:
    region = make_territory(session)
    town = make_territory(session, parent_id=region.id)
    village = make_territory(session, parent_id=town.id, kind="settlement")
    school = make_institution(session, territory_id=village.id, sector="education")
    start = T0 - timedelta(days=30)

    def policy(name: str, **kw: object) -> int:
        created = create_policy(
            session,
            SlaPolicyCreate(name=name, effective_from=start, **kw),  # type: ignore[arg-type]
            by=None,
            now=start,
        )
        assert created.id is not None
        return created.id

    assert resolve_policy(session, school.id or 0, T0) is None
    everywhere = policy("Общая", first_response_minutes=600)
    assert resolve_policy(session, school.id or 0, T0).id == everywhere  # type: ignore[union-attr]
    regional = policy("Область", territory_id=region.id)
    assert resolve_policy(session, school.id or 0, T0).id == regional  # type: ignore[union-attr]
    municipal = policy("Город", territory_id=town.id)
    assert resolve_policy(session, school.id or 0, T0).id == municipal  # type: ignore[union-attr]
    policy("Другая отрасль", sector="health")
    education = policy("Образование", sector="education")
    assert resolve_policy(session, school.id or 0, T0).id == education  # type: ignore[union-attr]
    own = policy("Школа", institution_id=school.id)
    assert resolve_policy(session, school.id or 0, T0).id == own  # type: ignore[union-attr]


def test_a_question_keeps_the_policy_version_it_was_created_under(session: Session) -> None:
    institution = make_institution(session)
    v1 = create_policy(
        session,
        SlaPolicyCreate(
            name="Норма",
            institution_id=institution.id,
            first_response_minutes=540,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        by=None,
        now=T0,
    )
    before = _new(session, institution_id=institution.id)
    v2 = create_policy(
        session,
        SlaPolicyCreate(
            name="Норма",
            institution_id=institution.id,
            first_response_minutes=240,
            effective_from=datetime(2026, 3, 10, 6, 0, tzinfo=UTC),
        ),
        by=None,
        now=T0 + timedelta(hours=1),
    )
    after = make_question(
        session, institution_id=institution.id, created_at=T0 + timedelta(hours=2)
    )
    assert before.policy_id == v1.id
    assert after.policy_id == v2.id
    # Restarting the old question's clocks (a reclassification) keeps its version.
    sla.clocks_stopped(session, before, at=T0 + timedelta(hours=3))
    sla.clocks_started(session, before, now=T0 + timedelta(hours=3))
    assert _clocks(session, before)[Target.first_response].target_minutes == 540
    assert _clocks(session, after)[Target.first_response].target_minutes == 240


def test_a_response_within_the_target_is_met_with_working_and_wall_minutes(
    session: Session,
) -> None:
    question = _new(session)
    sla.on_response(session, question, at=_local(10, 15), interim=False)
    clocks = _clocks(session, question)
    first, final = clocks[Target.first_response], clocks[Target.final_answer]
    assert (first.state, first.working_minutes, first.wall_minutes) == (ClockState.met, 300, 300)
    assert first.done_at == _local(10, 15)
    assert first.check_at is None
    assert final.state == ClockState.met
    assert question.due_at is None


def test_a_late_response_is_missed_and_minutes_count_only_working_time(session: Session) -> None:
    question = _new(session)
    # Thursday 11:00: Tue 10-18 (480) + Wed 9-18 (540) + Thu 9-11 (120).
    sla.on_response(session, question, at=_local(12, 11), interim=True)
    first = _clocks(session, question)[Target.first_response]
    assert first.state == ClockState.missed
    assert first.working_minutes == 1140
    assert first.wall_minutes == 49 * 60
    # Idempotent for the same instant, and an earlier reply found later wins.
    sla.on_response(session, question, at=_local(12, 11), interim=True)
    assert _clocks(session, question)[Target.first_response].working_minutes == 1140
    sla.on_response(session, question, at=_local(10, 17), interim=True)
    first = _clocks(session, question)[Target.first_response]
    assert (first.state, first.working_minutes) == (ClockState.met, 420)


def test_closing_while_waiting_then_reopening_does_not_count_the_wait(session: Session) -> None:
    question = _new(session)
    sla.on_response(session, question, at=_local(10, 11), interim=True)
    assert _clocks(session, question)[Target.final_answer].due_at == _local(19, 10)
    sla.on_status_change(
        session, question, old="answered", new="waiting_citizen", at=_local(11, 10)
    )
    sla.on_status_change(session, question, old="waiting_citizen", new="closed", at=_local(12, 10))
    assert _clocks(session, question)[Target.final_answer].state == ClockState.none
    # Reopened on Friday 10:00: two working days since the pause, none of them owed.
    sla.on_status_change(session, question, old="closed", new="in_progress", at=_local(13, 10))
    final = _clocks(session, question)[Target.final_answer]
    assert final.state == ClockState.running
    assert final.paused_at is None
    assert final.details["paused_working_minutes"] == 1080
    assert final.due_at == _local(23, 10)  # as if the citizen had answered on Friday
    assert question.due_at is not None and question.due_at <= final.due_at


def test_waiting_for_the_citizen_pauses_the_final_answer_and_adds_the_time_back(
    session: Session,
) -> None:
    question = _new(session)
    sla.on_response(session, question, at=_local(10, 11), interim=True)
    final = _clocks(session, question)[Target.final_answer]
    assert final.due_at == _local(19, 10)
    sla.on_status_change(
        session, question, old="answered", new="waiting_citizen", at=_local(11, 10)
    )
    final = _clocks(session, question)[Target.final_answer]
    assert final.state == ClockState.paused
    assert final.check_at is None
    assert question.due_at is None  # a paused clock is no deadline
    # The citizen answers on Friday 10:00: two working days (1080 min) were paused.
    sla.on_status_change(
        session, question, old="waiting_citizen", new="in_progress", at=_local(13, 10)
    )
    sla.on_citizen_message(session, question, at=_local(13, 10))
    clocks = _clocks(session, question)
    final = clocks[Target.final_answer]
    assert final.state == ClockState.running
    assert final.details["paused_working_minutes"] == 1080
    assert final.paused_seconds == 2 * 24 * 3600
    assert final.due_at == _local(23, 10)  # 1080 working minutes (two days) later
    # The follow-up came after a response: the next-response clock runs from it.
    following = clocks[Target.next_response]
    assert following.started_at == _local(13, 10)
    assert following.due_at == _local(13, 18)  # Friday 10:00 + 8 working hours
    assert question.due_at == following.due_at
    sla.on_response(session, question, at=_local(13, 12), interim=False)
    clocks = _clocks(session, question)
    final, following = clocks[Target.final_answer], clocks[Target.next_response]
    assert following.state == ClockState.met
    assert following.working_minutes == 120
    assert final.state == ClockState.met
    # Tuesday 10:00 .. Friday 12:00 is 8 + 9 + 9 + 3 = 29 hours, less the 18 paused.
    assert final.working_minutes == 11 * 60


def test_an_interim_answer_moves_the_final_deadline_never_past_the_policy(
    session: Session,
) -> None:
    question = _new(session)
    expected = _local(13, 12)
    sla.on_response(session, question, at=_local(10, 11), interim=True, expected_at=expected)
    clocks = _clocks(session, question)
    assert clocks[Target.first_response].state == ClockState.met
    final = clocks[Target.final_answer]
    assert final.state == ClockState.running
    assert final.due_at == expected
    assert final.warn_at is not None and final.warn_at < expected
    assert question.due_at == expected
    sla.on_response(session, question, at=_local(11, 11), interim=True, expected_at=_local(31, 12))
    assert _clocks(session, question)[Target.final_answer].due_at == _local(19, 10)
    sla.on_response(session, question, at=_local(19, 10), interim=False)
    final = _clocks(session, question)[Target.final_answer]
    assert final.state == ClockState.met


def test_dismissal_and_withdrawal_stop_the_clocks_and_restoring_restarts_them(
    session: Session,
) -> None:
    question = _new(session)
    question.status = QuestionStatus.withdrawn
    sla.on_status_change(session, question, old="new", new="withdrawn", at=_local(10, 11))
    assert {c.state for c in _clocks(session, question).values()} == {ClockState.none}
    assert question.due_at is None
    question.status = QuestionStatus.new
    sla.on_status_change(session, question, old="withdrawn", new="new", at=_local(10, 12))
    first = _clocks(session, question)[Target.first_response]
    assert first.state == ClockState.running
    assert first.check_at == first.warn_at
    assert question.due_at == _local(10, 18)
    question.status = QuestionStatus.dismissed
    sla.on_status_change(session, question, old="new", new="dismissed", at=_local(10, 13))
    assert {c.state for c in _clocks(session, question).values()} == {ClockState.none}


def test_a_dismissed_question_starts_no_clock(session: Session) -> None:
    _rule(session, {"dismiss_reason": "off_topic"})
    question = _new(session)
    assert question.status == QuestionStatus.dismissed
    assert _clocks(session, question) == {}
    assert question.due_at is None


def test_calendar_minutes_policy(session: Session) -> None:
    institution = make_institution(session)
    create_policy(
        session,
        SlaPolicyCreate(
            name="Круглосуточно",
            institution_id=institution.id,
            first_response_minutes=120,
            working_time=False,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        by=None,
        now=T0,
    )
    question = make_question(
        session, institution_id=institution.id, created_at=_local(14, 23)
    )  # a Saturday night
    first = _clocks(session, question)[Target.first_response]
    assert first.due_at == _local(15, 1)
    assert first.warn_at == _local(15, 0, 30)


def test_the_question_api_shows_each_target(client: TestClient, session: Session) -> None:
    question = _new(session)
    sla.on_response(session, question, at=_local(10, 15), interim=True)
    headers = auth_headers(session, make_user(session, Role.admin))
    body = client.get(f"/api/v1/questions/{question.id}", headers=headers).json()
    assert body["sla"]["first_response"] == {
        "due_at": "2026-03-10T13:00:00Z",
        "state": "met",
        "done_at": "2026-03-10T10:00:00Z",
        "working_minutes": 300.0,
        "wall_minutes": 300.0,
    }
    final = body["sla"]["final_answer"]
    assert (final["state"], final["due_at"], final["working_minutes"]) == (
        "running",
        "2026-03-19T05:00:00Z",
        None,
    )
    assert body["sla"]["next_response"]["state"] == "none"
