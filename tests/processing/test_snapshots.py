"""Configuration snapshots (app.core.snapshots): every change applies to the next event.

Each event here is processed in a session of its own on committed data, as the
processor does, so what one event reads is kept in the process-wide snapshots
and the next event would see it, were it stale.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import snapshots
from app.directory.models import Platform
from app.intake.models import InboundEvent
from app.processing import ingest as inbox_service
from app.questions.models import OutboxItem, Question, WebhookSubscription
from app.routing import service as routing
from app.routing.models import RoutingRule
from app.routing.rules import RoutingRuleWrite
from app.sla import policies
from tests.factories.directory import cipher, make_institution, make_page

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
_seq = itertools.count(1)


@pytest.fixture
def page_id(live_engine: sa.Engine) -> int:
    with Session(live_engine) as session:
        page = make_page(session, platform=Platform.generic)
        session.commit()
        assert page.id is not None
        return page.id


def _arrive(engine: sa.Engine, page_id: int, text: str) -> Question:
    """A citizen's new message on the page, processed in its own transaction."""
    n = next(_seq)
    body = {
        "id": f"crm-{n}",
        "thread_id": f"crm-thread-{n}",
        "kind": "message",
        "author": {"id": f"citizen-{n}", "name": "Елена Смирнова"},
        "text": text,
        "sent_at": (NOW - timedelta(minutes=n)).isoformat(),
        "from_page": False,
    }
    with Session(engine, expire_on_commit=False) as session:
        event = InboundEvent(
            platform="generic",
            page_id=page_id,
            delivery_key=str(body["id"]),
            body=json.dumps(body).encode(),
            received_at=NOW,
        )
        session.add(event)
        session.flush()
        inbox_service.process(session, event, cipher=cipher(), now=NOW)
        session.commit()
        return session.exec(select(Question).order_by(col(Question.id).desc())).first()  # type: ignore[return-value]


def _rule(engine: sa.Engine, actions: dict[str, Any], keywords: list[str]) -> int:
    with Session(engine) as session:
        rule = routing.create_rule(
            session,
            RoutingRuleWrite.model_validate(
                {"name": "Дороги", "conditions": {"keywords": keywords}, "actions": actions}
            ),
            NOW,
        )
        session.commit()
        assert rule.id is not None
        return rule.id


def test_a_rule_written_after_an_event_routes_the_next_one(
    live_engine: sa.Engine, page_id: int
) -> None:
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").routed_by_rule_id is None
    rule_id = _rule(live_engine, {"priority": "urgent"}, ["дорога"])
    routed = _arrive(live_engine, page_id, "Когда починят дорогу?")
    assert (routed.routed_by_rule_id, routed.priority) == (rule_id, "urgent")

    with Session(live_engine) as session:
        rule = session.get(RoutingRule, rule_id)
        assert rule is not None
        rule.enabled = False
        session.commit()
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").routed_by_rule_id is None


def test_a_rule_of_a_rolled_back_transaction_is_forgotten(
    live_engine: sa.Engine, page_id: int
) -> None:
    _arrive(live_engine, page_id, "Когда починят дорогу?")
    with Session(live_engine) as session:
        routing.create_rule(
            session,
            RoutingRuleWrite.model_validate(
                {
                    "name": "Дороги",
                    "conditions": {"keywords": ["дорога"]},
                    "actions": {"priority": "urgent"},
                }
            ),
            NOW,
        )
        # The transaction that wrote the rule sees it...
        event = InboundEvent(
            platform="generic",
            page_id=page_id,
            delivery_key="crm-rolled-back",
            body=json.dumps(
                {
                    "id": "crm-rolled-back",
                    "thread_id": "crm-thread-rolled-back",
                    "kind": "message",
                    "author": {"id": "citizen-rolled-back", "name": "Елена"},
                    "text": "Когда починят дорогу?",
                    "sent_at": NOW.isoformat(),
                    "from_page": False,
                }
            ).encode(),
            received_at=NOW,
        )
        session.add(event)
        session.flush()
        inbox_service.process(session, event, cipher=cipher(), now=NOW)
        # By id: on PostgreSQL rows come back in heap order, and after a vacuum a row
        # written later by another connection may sit in an earlier page.
        mine = session.exec(
            select(Question).where(col(Question.text).contains("дорогу")).order_by(col(Question.id))
        ).all()
        assert mine[-1].routed_by_rule_id is not None
        session.rollback()
    # ... and no other transaction ever does.
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").routed_by_rule_id is None


def test_a_new_policy_and_a_paused_subscription_apply_to_the_next_question(
    live_engine: sa.Engine, page_id: int
) -> None:
    with Session(live_engine) as session:
        subscription = WebhookSubscription(
            url="https://sed.example.ru/hook", events=["question.created"]
        )
        session.add(subscription)
        session.flush()
        subscription_id = subscription.id
        session.commit()
    first = _arrive(live_engine, page_id, "Когда починят дорогу?")
    assert first.policy_id is None

    with Session(live_engine) as session:
        institution_id = session.exec(select(Question.institution_id)).first()
        policy = policies.create_policy(
            session,
            policies.SlaPolicyCreate(
                name="Учреждение",
                institution_id=institution_id,
                first_response_minutes=60,
                effective_from=NOW - timedelta(days=1),
            ),
            by=None,
            now=NOW,
        )
        policy_id = policy.id
        session.commit()
        row = session.get(WebhookSubscription, subscription_id)
        assert row is not None
        row.is_active = False
        session.commit()
    second = _arrive(live_engine, page_id, "Когда починят дорогу?")
    assert second.policy_id == policy_id
    with Session(live_engine) as session:
        queued = session.exec(select(OutboxItem.question_id)).all()
    assert queued == [first.id]


def test_a_rule_may_route_to_an_institution_created_a_moment_ago(
    live_engine: sa.Engine, page_id: int
) -> None:
    _arrive(live_engine, page_id, "Когда починят дорогу?")
    with Session(live_engine) as session:
        target_id = make_institution(session).id
        session.commit()
    _rule(live_engine, {"route_to_institution_id": target_id}, ["дорога"])
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").institution_id == target_id


def test_raw_sql_writes_are_seen_after_invalidate(live_engine: sa.Engine, page_id: int) -> None:
    rule_id = _rule(live_engine, {"priority": "urgent"}, ["дорога"])
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").routed_by_rule_id == rule_id
    with live_engine.begin() as conn:
        conn.execute(sa.text("UPDATE routing_rule SET enabled = false"))
    snapshots.invalidate()
    assert _arrive(live_engine, page_id, "Когда починят дорогу?").routed_by_rule_id is None
