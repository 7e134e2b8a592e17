"""The SLA watcher: warnings, breaches and escalations on time, each exactly once,
whoever runs it and however many run it; alerts by Telegram and e-mail, never at night."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, col, func, select

from app.auth.models import Notification, Role, User
from app.core.config import Settings
from app.jobs.context import JobContext
from app.questions.models import OutboxItem, Priority, Question, TimelineEntry, WebhookSubscription
from app.routing import service as routing
from app.routing.rules import RoutingRuleWrite
from app.sla import notify, watcher
from app.sla import service as sla
from app.sla.models import ClockState, SlaClock, Target
from tests.conftest import FrozenClock
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_page, make_territory
from tests.factories.questions import make_question

T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # Tuesday 10:00 in Yekaterinburg (UTC+5)
WARN = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 16:00 local: 75 % of 8 working hours
DUE = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 18:00 local
ESCALATE = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)  # + 4 working hours: Wednesday 13:00


def _world(session: Session) -> dict[str, Any]:
    region = make_territory(session)
    town = make_territory(session, parent_id=region.id)
    institution = make_institution(session, territory_id=town.id)
    page = make_page(session, institution_id=institution.id)
    users = {
        "operator": make_user(session, Role.operator, institution_ids=[institution.id]),
        "town": make_user(session, Role.supervisor, territory_id=town.id),
        "region": make_user(session, Role.supervisor, territory_id=region.id),
        "elsewhere": make_user(
            session, Role.operator, institution_ids=[make_institution(session).id]
        ),
    }
    return {"institution": institution, "page": page, **users}


def _question(session: Session, world: dict[str, Any], **kw: Any) -> Question:
    page = world["page"]
    return make_question(session, page_id=page.id, created_at=T0, **kw)


def _entries(session: Session, question: Question) -> list[str]:
    return list(
        session.exec(
            select(TimelineEntry.kind)
            .where(
                TimelineEntry.question_id == question.id,
                col(TimelineEntry.kind).startswith("sla."),
            )
            .order_by(col(TimelineEntry.id))
        ).all()
    )


def _alerts(session: Session, user: User) -> list[str]:
    return list(
        session.exec(
            select(Notification.kind)
            .where(Notification.user_id == user.id)
            .order_by(col(Notification.id))
        ).all()
    )


def test_warning_breach_and_escalation_each_once_and_to_the_right_people(
    session: Session, settings: Settings
) -> None:
    world = _world(session)
    session.add(WebhookSubscription(url="https://crm.example/h", events=["sla.breached"]))
    question = _question(session, world)
    first = sla.clocks_of(session, question)[Target.first_response]
    assert watcher.sweep(session, WARN - timedelta(seconds=1), settings) == 0

    assert watcher.sweep(session, WARN + timedelta(seconds=5), settings) == 1
    assert (first.state, first.check_at) == (ClockState.warning, DUE)
    assert watcher.sweep(session, WARN + timedelta(seconds=10), settings) == 0
    assert _entries(session, question) == ["sla.warning"]
    assert _alerts(session, world["operator"]) == ["sla.warning"]
    assert _alerts(session, world["town"]) == []

    assert watcher.sweep(session, DUE + timedelta(seconds=30), settings) == 1
    assert first.state == ClockState.breached
    assert first.breached_at == DUE + timedelta(seconds=30)
    assert first.check_at == ESCALATE
    assert question.due_at == DUE  # a breached deadline stays at the head of the queue
    assert _entries(session, question) == ["sla.warning", "sla.breached"]
    assert _alerts(session, world["operator"]) == ["sla.warning", "sla.breached"]
    assert _alerts(session, world["town"]) == ["sla.breached"]
    assert _alerts(session, world["region"]) == []
    assert _alerts(session, world["elsewhere"]) == []
    breach = session.exec(
        select(TimelineEntry).where(
            TimelineEntry.question_id == question.id, TimelineEntry.kind == "sla.breached"
        )
    ).one()
    assert breach.at == DUE
    assert breach.data["target"] == "first_response"
    events = session.exec(select(OutboxItem).where(OutboxItem.question_id == question.id)).all()
    assert [e.payload["event"] for e in events] == ["sla.breached"]

    assert watcher.sweep(session, ESCALATE - timedelta(seconds=1), settings) == 0
    assert watcher.sweep(session, ESCALATE, settings) == 1
    assert (first.escalation_level, first.check_at) == (3, None)
    assert _alerts(session, world["region"]) == ["sla.escalated"]
    assert _alerts(session, world["town"]) == ["sla.breached"]

    # A worker with a stale copy of the clock cannot raise the breach a second time.
    first.state, first.check_at = ClockState.warning, DUE
    session.add(first)
    session.flush()
    assert watcher.sweep(session, ESCALATE + timedelta(minutes=1), settings) == 1
    assert _entries(session, question) == ["sla.warning", "sla.breached", "sla.escalated"]
    assert _alerts(session, world["operator"]) == ["sla.warning", "sla.breached"]
    assert (
        len(session.exec(select(OutboxItem).where(OutboxItem.question_id == question.id)).all())
        == 1
    )


def test_a_late_watcher_breaches_without_a_stale_warning(
    session: Session, settings: Settings
) -> None:
    world = _world(session)
    question = _question(session, world)
    # Down all night: at 08:00 next morning the breach is due and so is the escalation.
    watcher.sweep(session, ESCALATE, settings)
    assert _entries(session, question) == ["sla.breached", "sla.escalated"]
    assert _alerts(session, world["operator"]) == ["sla.breached"]


def test_an_answered_question_raises_nothing(session: Session, settings: Settings) -> None:
    world = _world(session)
    question = _question(session, world)
    sla.on_response(session, question, at=T0 + timedelta(hours=1), interim=True)
    assert watcher.sweep(session, ESCALATE, settings) == 0
    assert _entries(session, question) == []


def test_alerts_wait_for_the_morning_unless_urgent(session: Session) -> None:
    world = _world(session)
    user = world["town"]
    normal = _question(session, world)
    rule = RoutingRuleWrite.model_validate(
        {
            "name": "Аварии",
            "conditions": {"keywords": ["авария"]},
            "actions": {"priority": "urgent"},
        }
    )
    routing.create_rule(session, rule, T0)
    urgent = _question(session, world, text="Авария на теплотрассе, когда устраните?")
    assert urgent.priority == Priority.urgent and normal.priority == Priority.normal
    thursday_night = datetime(2026, 4, 30, 20, 0, tzinfo=UTC) - timedelta(hours=5)
    # May 1 (Friday) is a holiday, then the weekend: Monday 09:00 local.
    monday_morning = datetime(2026, 5, 4, 4, 0, tzinfo=UTC)
    assert notify.deliver_after(session, user, normal, thursday_night) == monday_morning
    assert notify.deliver_after(session, user, urgent, thursday_night) == thursday_night
    working = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    assert notify.deliver_after(session, user, normal, working) == working


def _commit_world(committed: Session, count: int) -> tuple[dict[str, Any], list[int]]:
    world = _world(committed)
    ids = []
    for _ in range(count):
        question = _question(committed, world)
        ids.append(question.id or 0)
    committed.commit()
    return world, ids


def test_two_workers_raise_each_breach_exactly_once(
    committed: Session,
    job_context: Callable[..., JobContext],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, ids = _commit_world(committed, 40)
    monkeypatch.setattr(watcher, "BATCH", 3)  # many small batches: the workers interleave
    clock.now = DUE + timedelta(seconds=20)
    barrier = threading.Barrier(2)
    handled: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            ctx = job_context()
            barrier.wait()
            handled.append(watcher.sla_sweep(ctx))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(handled) == 40
    committed.expire_all()
    breaches = committed.exec(
        select(func.count())
        .select_from(TimelineEntry)
        .where(col(TimelineEntry.question_id).in_(ids), TimelineEntry.kind == "sla.breached")
    ).one()
    assert breaches == 40
    per_user = committed.exec(
        select(Notification.user_id, func.count())
        .where(col(Notification.question_id).in_(ids))
        .group_by(col(Notification.user_id))
    ).all()
    assert dict(per_user) == {world["operator"].id: 40, world["town"].id: 40}
    states = committed.exec(
        select(SlaClock.state).where(
            col(SlaClock.question_id).in_(ids), SlaClock.target == Target.first_response
        )
    ).all()
    assert set(states) == {ClockState.breached}


@pytest.mark.postgres
def test_a_clock_another_worker_holds_is_skipped_not_waited_for(
    committed: Session, engine: sa.Engine, settings: Settings
) -> None:
    world, ids = _commit_world(committed, 3)
    held_id = committed.exec(
        select(SlaClock.id).where(
            SlaClock.question_id == ids[0], SlaClock.target == Target.first_response
        )
    ).one()
    now = DUE + timedelta(seconds=20)
    with Session(engine) as holder, Session(engine) as other:
        holder.exec(select(SlaClock).where(SlaClock.id == held_id).with_for_update()).one()
        assert watcher.sweep(other, now, settings) == 2  # at once, without the held one
        other.commit()
        holder.commit()
    with Session(engine) as late:
        assert watcher.sweep(late, now, settings) == 1
        late.commit()
    committed.expire_all()
    assert (
        committed.exec(
            select(func.count())
            .select_from(TimelineEntry)
            .where(col(TimelineEntry.question_id).in_(ids), TimelineEntry.kind == "sla.breached")
        ).one()
        == 3
    )
    assert world["operator"].id is not None


class _FakeSMTP:
    outbox: ClassVar[list[EmailMessage]] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host

    def __enter__(self) -> _FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starttls(self) -> None:
        return None

    def login(self, user: str, password: str) -> None:
        return None

    def send_message(self, message: EmailMessage) -> None:
        self.outbox.append(message)


def test_night_breaches_go_out_as_one_morning_digest_once(
    committed: Session,
    job_context: Callable[..., JobContext],
    clock: FrozenClock,
    sent: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = _world(committed)
    supervisor = world["town"]
    supervisor.telegram_chat_id = "424242"
    supervisor.email = "curator@chelreg.example"
    committed.add(supervisor)
    for _ in range(2):
        _question(committed, world)
    committed.commit()
    monkeypatch.setattr(_FakeSMTP, "outbox", [])
    monkeypatch.setattr(notify.smtplib, "SMTP", _FakeSMTP)
    ctx = job_context(telegram_alert_bot_token=SecretStr("123:alert"), smtp_host="smtp.example")
    clock.now = DUE + timedelta(seconds=20)  # 18:00:20 local: after hours
    assert watcher.sla_sweep(ctx) == 2
    assert notify.deliver_notifications(ctx) == 0
    assert sent == []
    clock.now = datetime(2026, 3, 11, 4, 0, 5, tzinfo=UTC)  # Wednesday 09:00 local
    assert notify.deliver_notifications(ctx) == 2
    assert len(sent) == 1
    assert sent[0].url.path == "/bot123:alert/sendMessage"
    text = sent[0].read().decode()
    assert "424242" in text
    assert len(_FakeSMTP.outbox) == 1
    assert _FakeSMTP.outbox[0]["To"] == "curator@chelreg.example"
    assert "2 уведомления о сроках" in str(_FakeSMTP.outbox[0]["Subject"])
    assert notify.deliver_notifications(ctx) == 0
    assert len(sent) == 1


def test_a_sweep_stands_aside_after_the_clock_in_hand_when_a_webhook_waits(
    session: Session, settings: Settings
) -> None:
    world = _world(session)
    for _ in range(3):
        _question(session, world)
    waits = iter([False, True])  # a webhook starts waiting during the second clock
    assert (
        watcher.sweep(
            session, WARN + timedelta(seconds=5), settings, stand_aside=lambda: next(waits)
        )
        == 2
    )
    # What was left is still due and moves on in the next batch.
    assert watcher.sweep(session, WARN + timedelta(seconds=5), settings) == 1
    assert watcher.sweep(session, WARN + timedelta(seconds=5), settings) == 0
