"""Routing rules: their conditions and actions, validation, and matching a question.

Conditions are ANDed; an empty list means "any". Keywords are stored as lemmas
(«дороги», «дорогу» → «дорога»), so a rule matches every inflected form; a phrase
matches consecutive words. The regular expression is searched in the raw text,
case-insensitively. Institution, territory and sector conditions are about the
institution that owns the page (where the question would land without rules).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, Protocol, cast

import re2
from pydantic import ConfigDict, field_validator
from sqlmodel import Field, Session, SQLModel, col, select

from app.core import snapshots
from app.core.errors import Invalid, NotFound
from app.directory.models import Institution, Page, Platform, Sector, Territory
from app.questions.models import DismissReason, Priority, Question
from app.routing.lemmas import KeywordIndex, lemmatize, normalise_keywords
from app.routing.models import Category, RoutingRule
from app.routing.triage import Classification

MAX_REGEX = 500
log = logging.getLogger("otklik.routing")


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...


class RuleConditions(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    platforms: list[Platform] = []
    page_ids: list[int] = []
    institution_ids: list[int] = []
    # The subtree of this territory.
    territory_id: int | None = None
    sectors: list[Sector] = []
    classifications: list[Classification] = []
    # Words or phrases in any form; stored as lemmas.
    keywords: list[str] = []
    keywords_mode: Literal["any", "all"] = "any"
    regex: str | None = None

    @field_validator("keywords")
    @classmethod
    def _lemmas(cls, value: list[str]) -> list[str]:
        lemmas = [k for k in normalise_keywords(value) if k]
        if len(lemmas) != len([v for v in value if v.strip()]):
            raise ValueError("a keyword without letters never matches")
        return list(dict.fromkeys(lemmas))

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if not value:
            return None
        if len(value) > MAX_REGEX:
            raise ValueError(f"regular expression longer than {MAX_REGEX} characters")
        compile_pattern(value)  # raises ValueError with the engine's reason
        return value


def compile_pattern(value: str) -> Pattern:
    """A rule's regular expression, case-insensitive, compiled by RE2: it runs in time
    linear in the text whatever the pattern, so no rule can stall processing on a long
    or hostile message. RE2 has no backreferences or lookarounds; such a pattern is
    refused with the engine's reason."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    try:
        return cast(Pattern, re2.compile(value, options))
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"invalid regular expression (RE2 syntax): {reason}") from exc


class RuleActions(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    route_to_institution_id: int | None = None
    category_id: int | None = None
    priority: Priority | None = None
    # Marks the question as needing no answer, with this reason.
    dismiss_reason: DismissReason | None = None


class RoutingRuleWrite(SQLModel):
    name: str = Field(min_length=1, max_length=255)
    position: int | None = None
    enabled: bool = True
    conditions: RuleConditions = RuleConditions()
    actions: RuleActions


class RoutingRuleRead(SQLModel):
    id: int
    position: int
    name: str
    enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def check_references(session: Session, conditions: RuleConditions, actions: RuleActions) -> None:
    """Every id a rule names must exist; a rule must do something."""
    if not actions.model_dump(exclude_none=True):
        raise Invalid("Правило должно что-то делать: укажите действие", code="rule_no_action")
    for institution_id in [*conditions.institution_ids, actions.route_to_institution_id]:
        if institution_id is not None and session.get(Institution, institution_id) is None:
            raise NotFound(f"Учреждение {institution_id} не найдено")
    for page_id in conditions.page_ids:
        if session.get(Page, page_id) is None:
            raise NotFound(f"Страница {page_id} не найдена")
    if (
        conditions.territory_id is not None
        and session.get(Territory, conditions.territory_id) is None
    ):
        raise NotFound(f"Территория {conditions.territory_id} не найдена")
    if actions.category_id is not None and session.get(Category, actions.category_id) is None:
        raise NotFound(f"Категория {actions.category_id} не найдена")


# --- matching -------------------------------------------------------------------


@dataclass
class Subject:
    """What rules look at: a question as it arrived on its page."""

    platform: str
    page_id: int
    institution_id: int
    territory_path: str
    sector: str
    classification: str
    text: str

    @cached_property
    def lemmas(self) -> list[str]:
        return lemmatize(self.text)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """What a match tells of its rule (a plain value: compiled rules outlive sessions)."""

    id: int | None
    name: str
    position: int


@dataclass
class CompiledRule:
    rule: RuleRef
    conditions: RuleConditions
    actions: RuleActions
    territory_path: str | None = None
    pattern: Pattern | None = field(default=None)
    # The conditions' keywords, indexed once per compiled rule (None: it has none).
    keywords: KeywordIndex | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.conditions.keywords:
            self.keywords = KeywordIndex(self.conditions.keywords)

    def matches(self, s: Subject) -> bool:
        c = self.conditions
        if c.platforms and s.platform not in c.platforms:
            return False
        if c.page_ids and s.page_id not in c.page_ids:
            return False
        if c.institution_ids and s.institution_id not in c.institution_ids:
            return False
        if self.territory_path is not None and not s.territory_path.startswith(self.territory_path):
            return False
        if c.sectors and s.sector not in c.sectors:
            return False
        if c.classifications and s.classification not in c.classifications:
            return False
        if self.pattern is not None and self.pattern.search(s.text) is None:
            return False
        return self.keywords is None or self.keywords.matches(s.lemmas, c.keywords_mode)


@dataclass(frozen=True)
class _Parsed:
    conditions: RuleConditions
    actions: RuleActions
    pattern: Pattern | None


# Parsed conditions and actions by the rule's stored content, so that a rule is
# validated once per process, not once per question. Keyed by content, never by id
# or time, it cannot go stale: an edited rule is a new key.
_PARSED: dict[str, _Parsed] = {}
_PARSED_MAX = 512


def _parsed(rule: RoutingRule) -> _Parsed:
    key = json.dumps([rule.conditions, rule.actions], sort_keys=True, ensure_ascii=False)
    parsed = _PARSED.get(key)
    if parsed is None:
        conditions = RuleConditions.model_validate(rule.conditions)
        parsed = _Parsed(
            conditions=conditions,
            actions=RuleActions.model_validate(rule.actions),
            pattern=compile_pattern(conditions.regex) if conditions.regex else None,
        )
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    return parsed


def compile_rule(session: Session, rule: RoutingRule) -> CompiledRule:
    parsed = _parsed(rule)
    conditions = parsed.conditions
    territory_path = None
    if conditions.territory_id is not None:
        territory = session.get(Territory, conditions.territory_id)
        # A deleted territory matches nothing rather than everything.
        territory_path = territory.path if territory else "\x00"
    return CompiledRule(
        rule=RuleRef(id=rule.id, name=rule.name, position=rule.position),
        conditions=conditions,
        actions=parsed.actions,
        territory_path=territory_path,
        pattern=parsed.pattern,
    )


def enabled_rules(session: Session) -> Sequence[CompiledRule]:
    """The enabled rules in order, compiled (a snapshot: see `app.core.snapshots`)."""
    return snapshots.get(session, "routing.enabled_rules", _load_enabled)


def _load_enabled(session: Session) -> tuple[CompiledRule, ...]:
    rows = session.exec(
        select(RoutingRule)
        .where(col(RoutingRule.enabled).is_(True))
        .order_by(col(RoutingRule.position), col(RoutingRule.id))
    ).all()
    compiled = []
    for row in rows:
        try:
            compiled.append(compile_rule(session, row))
        except ValueError as exc:
            # A rule stored before its syntax was refused (a backreference from before
            # RE2) matches nothing rather than stopping every question's routing.
            log.warning("routing rule %s is skipped: %s", row.id, exc)
    return tuple(compiled)


def first_match(rules: Sequence[CompiledRule], subject: Subject) -> CompiledRule | None:
    return next((rule for rule in rules if rule.matches(subject)), None)


def subjects(session: Session, questions: Iterable[Question]) -> list[tuple[Question, Subject]]:
    """Subjects of many questions with their pages, institutions and territories loaded at once."""
    questions = list(questions)
    pages = {
        p.id: p
        for p in session.exec(
            select(Page).where(col(Page.id).in_({q.page_id for q in questions}))
        ).all()
    }
    institutions = {
        i.id: i
        for i in session.exec(
            select(Institution).where(
                col(Institution.id).in_({p.institution_id for p in pages.values()})
            )
        ).all()
    }
    territories = {
        t.id: t
        for t in session.exec(
            select(Territory).where(
                col(Territory.id).in_({i.territory_id for i in institutions.values()})
            )
        ).all()
    }
    out: list[tuple[Question, Subject]] = []
    for q in questions:
        page = pages[q.page_id]
        institution = institutions[page.institution_id]
        out.append((q, _subject(q, page, institution, territories.get(institution.territory_id))))
    return out


def subject(session: Session, question: Question) -> Subject:
    """The subject of one question; its page, institution and territory by primary key,
    so rows the session already holds are not read again."""
    page = session.get(Page, question.page_id)
    assert page is not None
    institution = session.get(Institution, page.institution_id)
    assert institution is not None
    territory = session.get(Territory, institution.territory_id)
    return _subject(question, page, institution, territory)


def _subject(
    q: Question, page: Page, institution: Institution, territory: Territory | None
) -> Subject:
    return Subject(
        platform=str(page.platform),
        page_id=q.page_id,
        institution_id=page.institution_id,
        territory_path=territory.path if territory else "/",
        sector=str(institution.sector),
        classification=q.classification,
        text=q.text,
    )
