"""Transfers, dismissals, reclassification; rules and categories.

Triage and routing of a new question is `app.routing.arrival`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from app.auth.models import Notification, Role, User, UserInstitution
from app.core.errors import Conflict, Invalid, NotFound
from app.directory import service as directory_service
from app.directory.models import Institution, Sector, Territory, TerritoryKind
from app.questions import outgoing, timeline
from app.questions.locking import lock
from app.questions.models import OPEN_STATUSES, DismissReason, Question, QuestionStatus
from app.routing import rules as rules_mod
from app.routing import triage
from app.routing.models import Category, RoutingRule
from app.routing.rules import RoutingRuleRead, RoutingRuleWrite
from app.sla import service as sla_service

DISMISS_REASONS_RU: dict[str, str] = {
    DismissReason.spam: "Спам",
    DismissReason.gratitude: "Благодарность",
    DismissReason.off_topic: "Не по теме",
    DismissReason.duplicate: "Дубликат",
    DismissReason.formal_appeal: "Переведён в официальное обращение",
    DismissReason.other: "Другое",
}


# --- operators' actions -----------------------------------------------------------


def _held_since(session: Session, question: Question) -> datetime:
    from app.questions.models import TimelineEntry

    last = session.exec(
        select(TimelineEntry.at)
        .where(
            col(TimelineEntry.question_id) == question.id,
            col(TimelineEntry.kind) == "transferred",
        )
        .order_by(col(TimelineEntry.at).desc())
        .limit(1)
    ).first()
    return last or question.created_at


def operators(session: Session, institution_id: int) -> list[User]:
    """The active operators who work the institution's queue, by name."""
    return list(
        session.exec(
            select(User)
            .join(UserInstitution, col(UserInstitution.user_id) == col(User.id))
            .where(
                col(UserInstitution.institution_id) == institution_id,
                col(User.role) == Role.operator,
                col(User.is_active).is_(True),
            )
            .order_by(col(User.name), col(User.login))
        ).all()
    )


@dataclass(frozen=True, slots=True)
class TransferTarget:
    id: int
    name: str
    territory: str
    sector: str


def _fold(text: str) -> str:
    # Cyrillic case-folding in Python: SQLite's LIKE and lower() fold ASCII only.
    return text.casefold().replace("ё", "е")


def transfer_targets(
    session: Session, question: Question, *, q: str | None = None, limit: int = 50
) -> list[TransferTarget]:
    """Where the question may be transferred: the institutions of its region (the region
    of its institution's territory, else the whole tree) except its own, whose name or
    territory contains every word of `q`, by territory then name. An operator sees only
    their own queues, so this list, not their scope, is what a transfer picker shows."""
    current = session.get(Institution, question.institution_id)
    territory = session.get(Territory, current.territory_id) if current else None
    chain = directory_service.territory_chain(session, territory) if territory else []
    region = next((t for t in chain if t.kind == TerritoryKind.region), None)
    if region is None and chain:
        region = chain[-1]
    query = (
        sa.select(
            col(Institution.id),
            col(Institution.name),
            col(Territory.name),
            col(Institution.sector),
            col(Territory.id),
        )
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(col(Institution.id) != question.institution_id)
    )
    if region is not None:
        query = query.where(col(Territory.path).startswith(region.path))
    words = _fold(q or "").split()
    home = territory.id if territory else None
    found: list[tuple[tuple[bool, str, str], TransferTarget]] = []
    for row_id, name, territory_name, sector, territory_id in session.execute(query).all():
        haystack = _fold(f"{name} {territory_name}")
        if all(word in haystack for word in words):
            key = (territory_id != home, _fold(territory_name), _fold(name))
            found.append((key, TransferTarget(row_id or 0, name, territory_name, str(sector))))
    found.sort(key=lambda pair: pair[0])
    return [target for _, target in found[:limit]]


def transfer(
    session: Session,
    question: Question,
    *,
    institution_id: int,
    reason: str,
    by: User,
    now: datetime,
) -> Question:
    """Move an open question to another institution's queue; the citizen's clock keeps running.

    The timeline keeps who, when, from, to and why, and how long the question sat in
    the queue it leaves (reports charge that time to that queue). Raises Invalid,
    NotFound, Conflict.
    """
    assert question.id is not None
    reason = reason.strip()
    if not reason:
        raise Invalid("Укажите причину передачи", code="reason_required")
    lock(session, question)  # a colleague's dismissal or transfer meanwhile is seen, not undone
    if question.status not in OPEN_STATUSES:
        raise Conflict("Передать можно только открытый вопрос", code="question_closed")
    target = session.get(Institution, institution_id)
    if target is None:
        raise NotFound(f"Учреждение {institution_id} не найдено", code="institution_not_found")
    if institution_id == question.institution_id:
        raise Conflict("Вопрос уже в очереди этого учреждения", code="same_institution")
    since = _held_since(session, question)
    source = question.institution_id
    data = {
        "from_institution_id": source,
        "to_institution_id": institution_id,
        "reason": reason[:1000],
        "by_user_id": by.id,
        "by_name": by.name or by.login,
        "held_since": since.isoformat(),
        "held_wall_minutes": round(max(0.0, (now - since) / timedelta(minutes=1)), 1),
        "held_working_minutes": round(
            sla_service.working_minutes(session, question, since, now), 1
        ),
    }
    question.institution_id = institution_id
    question.assignee_id = None
    question.updated_at = now
    session.add(question)
    session.flush()
    timeline.record(session, question.id, "transferred", now, actor_id=by.id, data=data)
    outgoing.emit(
        session,
        "question.transferred",
        question,
        now,
        {"from_institution_id": source, "to_institution_id": institution_id, "reason": reason},
    )
    for operator in operators(session, institution_id):
        assert operator.id is not None
        session.add(
            Notification(
                user_id=operator.id,
                question_id=question.id,
                kind="transferred",
                text=f"Вам передан вопрос №{question.id}: {reason}"[:2000],
                dedupe_key=f"transfer:{question.id}:{now.isoformat()}",
                created_at=now,
                # In-app only: a transfer is no alert for Telegram or e-mail.
                delivered_at=now,
            )
        )
    session.flush()
    return question


def dismiss(
    session: Session,
    question: Question,
    *,
    reason: str,
    note: str | None,
    by: User,
    now: datetime,
) -> Question:
    """Mark an open question as needing no answer, with a reason code; stops its clocks."""
    assert question.id is not None
    if reason not in DismissReason.__members__:
        codes = ", ".join(DismissReason)
        raise Invalid(f"Неизвестная причина «{reason}»; возможны: {codes}", code="invalid_reason")
    note = (note or "").strip() or None
    if reason == DismissReason.other and note is None:
        raise Invalid("Для причины «Другое» нужен комментарий", code="note_required")
    lock(session, question)
    if question.status not in OPEN_STATUSES:
        raise Conflict("Отметить можно только открытый вопрос", code="question_closed")
    old = str(question.status)
    question.status = QuestionStatus.dismissed
    question.dismiss_reason = reason
    question.dismiss_note = note[:1000] if note else None
    question.closed_at = now
    question.updated_at = now
    session.add(question)
    session.flush()
    timeline.record(
        session,
        question.id,
        "dismissed",
        now,
        actor_id=by.id,
        data={"reason": reason, "note": question.dismiss_note},
    )
    sla_service.on_status_change(session, question, old=old, new="dismissed", at=now)
    return question


def reclassify(
    session: Session, question: Question, *, classification: str, by: User, now: datetime
) -> Question:
    """Correct the classification; a question that now needs an answer starts its clocks
    from the citizen's original time, one that no longer does stops them."""
    assert question.id is not None
    if classification not in triage.Classification.__members__:
        codes = ", ".join(triage.Classification)
        raise Invalid(
            f"Неизвестная классификация «{classification}»; возможны: {codes}",
            code="invalid_classification",
        )
    lock(session, question)
    old = question.classification
    if old == classification:
        return question
    question.classification = classification
    question.classification_rule = "manual"
    question.classification_note = f"Изменено вручную: {by.name or by.login}"[:500]
    question.updated_at = now
    session.add(question)
    session.flush()
    timeline.record(
        session,
        question.id,
        "reclassified",
        now,
        actor_id=by.id,
        data={"from": old, "to": classification},
    )
    answerable = sla_service.ANSWERABLE
    if classification in answerable and old not in answerable:
        sla_service.clocks_started(session, question, now=now)
    elif classification not in answerable and old in answerable:
        sla_service.clocks_stopped(session, question, at=now)
    return question


# --- rules -----------------------------------------------------------------------


class RoutingRuleUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    position: int | None = None
    enabled: bool | None = None
    conditions: rules_mod.RuleConditions | None = None
    actions: rules_mod.RuleActions | None = None


def rule_read(rule: RoutingRule) -> RoutingRuleRead:
    return RoutingRuleRead.model_validate(rule, from_attributes=True)


def _next_position(session: Session) -> int:
    top = session.exec(select(sa.func.max(RoutingRule.position))).one()
    return (top or 0) + 10


def create_rule(session: Session, data: RoutingRuleWrite, now: datetime) -> RoutingRule:
    rules_mod.check_references(session, data.conditions, data.actions)
    rule = RoutingRule(
        name=data.name,
        position=data.position if data.position is not None else _next_position(session),
        enabled=data.enabled,
        conditions=data.conditions.model_dump(mode="json", exclude_defaults=True),
        actions=data.actions.model_dump(mode="json", exclude_none=True),
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def get_rule(session: Session, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("Правило не найдено", code="rule_not_found")
    return rule


def update_rule(
    session: Session, rule_id: int, data: RoutingRuleUpdate, now: datetime
) -> RoutingRule:
    rule = get_rule(session, rule_id)
    conditions = data.conditions or rules_mod.RuleConditions.model_validate(rule.conditions)
    actions = data.actions or rules_mod.RuleActions.model_validate(rule.actions)
    rules_mod.check_references(session, conditions, actions)
    if data.name is not None:
        rule.name = data.name
    if data.position is not None:
        rule.position = data.position
    if data.enabled is not None:
        rule.enabled = data.enabled
    rule.conditions = conditions.model_dump(mode="json", exclude_defaults=True)
    rule.actions = actions.model_dump(mode="json", exclude_none=True)
    rule.updated_at = now
    session.add(rule)
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    rule = get_rule(session, rule_id)
    used = session.exec(select(Question.id).where(Question.routed_by_rule_id == rule_id)).first()
    if used is not None:
        raise Conflict(
            "Правило уже применялось к вопросам: отключите его вместо удаления",
            code="rule_in_use",
        )
    session.delete(rule)
    session.flush()


def list_rules(session: Session) -> Sequence[RoutingRule]:
    return session.exec(
        select(RoutingRule).order_by(col(RoutingRule.position), col(RoutingRule.id))
    ).all()


# --- categories -------------------------------------------------------------------


class CategoryWrite(SQLModel):
    name: str = Field(min_length=1, max_length=255)
    sector: Sector | None = None


def create_category(session: Session, data: CategoryWrite) -> Category:
    if session.exec(select(Category).where(Category.name == data.name)).first() is not None:
        raise Conflict(f"Категория «{data.name}» уже существует", code="category_exists")
    category = Category(name=data.name, sector=str(data.sector) if data.sector else None)
    session.add(category)
    session.flush()
    return category


def update_category(session: Session, category_id: int, data: CategoryWrite) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound("Категория не найдена", code="category_not_found")
    other = session.exec(select(Category).where(Category.name == data.name)).first()
    if other is not None and other.id != category_id:
        raise Conflict(f"Категория «{data.name}» уже существует", code="category_exists")
    category.name = data.name
    category.sector = str(data.sector) if data.sector else None
    session.add(category)
    session.flush()
    return category


def list_categories(session: Session) -> Sequence[Category]:
    return session.exec(select(Category).order_by(col(Category.name))).all()
