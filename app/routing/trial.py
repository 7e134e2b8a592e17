"""Trying a routing rule on recent questions before saving it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, select

from app.auth import service as auth_service
from app.auth.models import User
from app.questions.models import Question
from app.routing import rules as rules_mod
from app.routing.models import RoutingRule

EXAMPLES = 20
EXCERPT = 200


class RuleTry(SQLModel):
    conditions: rules_mod.RuleConditions = rules_mod.RuleConditions()
    # Where the rule would stand among the enabled ones (None: after all of them).
    position: int | None = None
    # The rule being edited: left out of the rules that come before it.
    rule_id: int | None = None
    limit: int = Field(default=1000, ge=1, le=10_000)


class TryExample(SQLModel):
    question_id: int
    created_at: datetime
    page_id: int
    institution_id: int
    classification: str
    text: str
    # The earlier rule that would take the question first, if any.
    taken_by_rule_id: int | None = None


class TryResult(SQLModel):
    total: int
    matched: int
    # Matched, but an earlier enabled rule would take them first.
    shadowed: int
    message: str
    examples: list[TryExample]


def _number(value: int) -> str:
    # Russian digit grouping: a no-break space between thousands.
    return f"{value:,}".replace(",", "\u00a0")


def try_rule(session: Session, user: User, data: RuleTry) -> TryResult:
    """Count how many of the caller's last `limit` questions the rule would match."""
    probe = rules_mod.compile_rule(
        session,
        RoutingRule(name="проба", conditions=data.conditions.model_dump(mode="json"), actions={}),
    )
    earlier = [
        rule
        for rule in rules_mod.enabled_rules(session)
        if rule.rule.id != data.rule_id
        and (data.position is None or rule.rule.position < data.position)
    ]
    questions = session.exec(
        select(Question)
        .where(auth_service.scope_filter(user, Question.institution_id))
        .order_by(col(Question.created_at).desc(), col(Question.id).desc())
        .limit(data.limit)
    ).all()
    matched = shadowed = 0
    examples: list[TryExample] = []
    for question, subject in rules_mod.subjects(session, questions):
        if not probe.matches(subject):
            continue
        matched += 1
        first = rules_mod.first_match(earlier, subject)
        if first is not None:
            shadowed += 1
        if len(examples) < EXAMPLES:
            examples.append(
                TryExample(
                    question_id=question.id or 0,
                    created_at=question.created_at,
                    page_id=question.page_id,
                    institution_id=question.institution_id,
                    classification=question.classification,
                    text=question.text[:EXCERPT],
                    taken_by_rule_id=first.rule.id if first else None,
                )
            )
    total = len(questions)
    message = f"Правило сработало бы на {_number(matched)} из {_number(total)} вопросов"
    if shadowed:
        message += f"; {_number(shadowed)} из них раньше заберут правила выше"
    return TryResult(
        total=total, matched=matched, shadowed=shadowed, message=message, examples=examples
    )
