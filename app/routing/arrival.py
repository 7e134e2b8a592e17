"""Triage and routing of a new question: its classification and the first matching rule.

`decide` works out what happens to a question that is about to be written, as column
values and timeline entries; ingestion (`app.processing.new_question`) writes them
with the question itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory import snapshots as directory
from app.directory.snapshots import PageInfo
from app.questions.models import Direction, Message, Priority, QuestionStatus
from app.routing import rules as rules_mod
from app.routing import triage
from app.routing.rules import CompiledRule

# Earlier messages of the same citizen on the same page that spam detection compares.
RECENT_WINDOW = timedelta(days=7)
RECENT_LIMIT = 20

RECENT = (
    select(Message.text)
    .where(
        col(Message.page_id) == sa.bindparam("page_id"),
        col(Message.author_id) == sa.bindparam("author_id"),
        col(Message.direction) == Direction.inbound,
        col(Message.question_id) != sa.bindparam("question_id"),
        col(Message.sent_at) >= sa.bindparam("recent_since"),
        col(Message.sent_at) <= sa.bindparam("recent_until"),
    )
    .order_by(col(Message.sent_at).desc())
    .limit(RECENT_LIMIT)
)


def recent_params(
    *, page_id: int, author_id: str, at: datetime, question_id: int
) -> dict[str, Any]:
    """The parameters of `RECENT` (the statement of `recent_texts`), for a caller that
    reads the recent texts together with something else."""
    return {
        "page_id": page_id,
        "author_id": author_id,
        "question_id": question_id,
        "recent_since": at - RECENT_WINDOW,
        "recent_until": at,
    }


def recent_texts(
    db: Session | sa.Connection, *, page_id: int, author_id: str, at: datetime, question_id: int
) -> list[str]:
    """The citizen's latest texts on the page in the week before `at`, but those of
    question `question_id` (0 for a question not written yet)."""
    params = recent_params(page_id=page_id, author_id=author_id, at=at, question_id=question_id)
    return list(db.execute(RECENT, params).scalars())


@dataclass
class Decision:
    """Column values of the question, in the order they were decided, and its timeline
    entries (kind, data), all at the question's arrival."""

    changes: dict[str, Any] = field(default_factory=dict)
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def decide(
    session: Session,
    *,
    page: PageInfo,
    institution_id: int,
    text: str,
    has_attachments: bool,
    recent: list[str],
    at: datetime,
    question_text: str | None = None,
    attachment_types: Sequence[str] = (),
) -> Decision:
    """Classify a new question and apply the first matching enabled routing rule.

    Records 'classified', and on a match 'routed' (and 'dismissed' when the rule
    marks it as needing no answer). `institution_id` is the question's institution
    before routing, `at` its arrival; rules look at `question_text` (default `text`).
    `attachment_types` are the platform's (a sticker alone needs no answer).
    """
    verdict = triage.classify(
        text,
        has_attachments=has_attachments,
        attachment_types=attachment_types,
        recent_texts=recent,
    )
    classification = str(verdict.classification)
    decision = Decision()
    decision.changes.update(
        classification=classification,
        classification_rule=verdict.rule,
        classification_note=verdict.explanation[:500],
    )
    decision.entries.append(
        ("classified", {"classification": classification, "rule": verdict.rule})
    )
    compiled = rules_mod.enabled_rules(session)
    if not compiled:
        return decision
    subject = rules_mod.Subject(
        platform=str(page.platform),
        page_id=page.id,
        institution_id=page.institution_id,
        territory_path=page.institution.territory_path or "/",
        sector=page.institution.sector,
        classification=classification,
        text=text if question_text is None else question_text,
    )
    match = rules_mod.first_match(compiled, subject)
    if match is not None:
        _route(session, decision, match, institution_id, at)
    return decision


def _route(
    session: Session, decision: Decision, match: CompiledRule, institution_id: int, at: datetime
) -> None:
    rule, actions = match.rule, match.actions
    changes = decision.changes
    data: dict[str, Any] = {"rule_id": rule.id, "rule_name": rule.name}
    target = actions.route_to_institution_id
    # A rule pointing at a removed institution leaves the question where it is.
    if (
        target is not None
        and target != institution_id
        and directory.institution(session, target) is not None
    ):
        data |= {"from_institution_id": institution_id, "to_institution_id": target}
        changes["institution_id"] = target
    if actions.category_id is not None:
        changes["category_id"] = actions.category_id
        data["category_id"] = actions.category_id
    if actions.priority is not None:
        changes["priority"] = Priority(actions.priority)
        data["priority"] = str(actions.priority)
    changes["routed_by_rule_id"] = rule.id
    decision.entries.append(("routed", data))
    if actions.dismiss_reason is not None:
        reason = str(actions.dismiss_reason)
        changes.update(
            status=QuestionStatus.dismissed,
            dismiss_reason=reason,
            dismiss_note=f"Правило «{rule.name}»"[:1000],
            closed_at=at,
        )
        decision.entries.append(("dismissed", {"reason": reason, "rule_id": rule.id}))
