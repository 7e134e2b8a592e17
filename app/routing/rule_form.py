"""A routing rule's form in the browser: reading what was typed (`RuleForm`), the
choices its lists offer, the rule in words for the list, and validation errors in
Russian. The pages are `app.routing.admin`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from app.directory.models import SECTOR_NAMES_RU, Institution, Platform, Territory
from app.routing import service
from app.routing.models import Category, RoutingRule
from app.routing.service import DISMISS_REASONS_RU

CLASSIFICATIONS_RU = {
    "question": "Вопрос",
    "complaint": "Жалоба",
    "gratitude": "Благодарность",
    "other": "Другое",
    "spam": "Спам",
}
PLATFORMS_RU = {
    Platform.vk: "ВКонтакте",
    Platform.telegram: "Telegram",
    Platform.ok: "Одноклассники",
    Platform.max: "MAX",
    Platform.generic: "Свой источник",
}
RULE_FIELDS = ("name", "position", "enabled", "conditions", "actions")
_FIELD_OF = {
    "name": "name",
    "keywords": "keywords",
    "regex": "regex",
    "territory_id": "territory_id",
    "route_to_institution_id": "route_to_institution_id",
}


def int_or_none(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


class RuleForm:
    """The form's values as typed, and the rule they describe."""

    def __init__(self, form: Any) -> None:
        self.name = str(form.get("name", "")).strip()
        self.keywords = str(form.get("keywords", ""))
        self.keywords_mode = str(form.get("keywords_mode", "any"))
        self.regex = str(form.get("regex", "")).strip()
        self.platforms = [str(v) for v in form.getlist("platforms")]
        self.classifications = [str(v) for v in form.getlist("classifications")]
        self.sectors = [str(v) for v in form.getlist("sectors")]
        self.territory_id = int_or_none(str(form.get("territory_id", "")))
        self.route_to_institution_id = int_or_none(str(form.get("route_to_institution_id", "")))
        self.category_id = int_or_none(str(form.get("category_id", "")))
        self.urgent = form.get("urgent") == "1"
        self.dismiss_reason = str(form.get("dismiss_reason", "")) or None

    @classmethod
    def of(cls, rule: RoutingRule | None) -> RuleForm:
        c = rule.conditions if rule else {}
        a = rule.actions if rule else {}
        form = cls(FormData())
        form.name = rule.name if rule else ""
        form.keywords = ", ".join(c.get("keywords", []))
        form.keywords_mode = c.get("keywords_mode", "any")
        form.regex = c.get("regex") or ""
        form.platforms = list(c.get("platforms", []))
        form.classifications = list(c.get("classifications", []))
        form.sectors = list(c.get("sectors", []))
        form.territory_id = c.get("territory_id")
        form.route_to_institution_id = a.get("route_to_institution_id")
        form.category_id = a.get("category_id")
        form.urgent = a.get("priority") == "urgent"
        form.dismiss_reason = a.get("dismiss_reason")
        return form

    def conditions(self) -> dict[str, Any]:
        words = [w.strip() for w in self.keywords.replace("\n", ",").split(",") if w.strip()]
        return {
            "keywords": words,
            "keywords_mode": self.keywords_mode if self.keywords_mode in ("any", "all") else "any",
            "regex": self.regex or None,
            "platforms": self.platforms,
            "classifications": self.classifications,
            "sectors": self.sectors,
            "territory_id": self.territory_id,
        }

    def actions(self) -> dict[str, Any]:
        return {
            "route_to_institution_id": self.route_to_institution_id,
            "category_id": self.category_id,
            "priority": "urgent" if self.urgent else None,
            "dismiss_reason": self.dismiss_reason,
        }


async def read_rule_form(request: Request) -> RuleForm:
    return RuleForm(await request.form())


RuleFormDep = Annotated[RuleForm, Depends(read_rule_form)]


def form_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        field = next(
            (_FIELD_OF[p] for p in reversed(loc) if p in _FIELD_OF), loc[-1] if loc else ""
        )
        message = str(error.get("msg", ""))
        if field == "name":
            errors["name"] = "Назовите правило: например, «Дороги — в дорожный отдел»"
        elif field == "keywords":
            errors["keywords"] = "В каждом слове должны быть буквы: уберите знаки и цифры без слов"
        elif field == "regex":
            reason = message.removeprefix("Value error, ")
            errors["regex"] = f"Регулярное выражение не подходит: {reason}"
        else:
            errors.setdefault("conditions", "Проверьте условия: выберите значения из списков")
    return errors


def choices(session: Session) -> dict[str, Any]:
    territories = session.exec(select(Territory).order_by(col(Territory.full_name))).all()
    institutions = session.exec(
        select(Institution.id, Institution.name, Territory.name)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .order_by(col(Institution.name))
    ).all()
    return {
        "territories": territories,
        "institutions": institutions,
        "categories": service.list_categories(session),
        "platforms": PLATFORMS_RU,
        "classifications": CLASSIFICATIONS_RU,
        "sectors": SECTOR_NAMES_RU,
        "dismiss_reasons": DISMISS_REASONS_RU,
    }


def describe(session: Session, rule: RoutingRule) -> dict[str, list[str]]:
    """The rule in words: «Слова: дорога, яма», «Передать: Дорожный отдел»."""
    c, a = rule.conditions, rule.actions
    when: list[str] = []
    if c.get("keywords"):
        join = " и " if c.get("keywords_mode") == "all" else " или "
        when.append("Слова: " + join.join(c["keywords"]))
    if c.get("regex"):
        when.append(f"Выражение: {c['regex']}")
    if c.get("platforms"):
        when.append("Платформы: " + ", ".join(PLATFORMS_RU.get(p, p) for p in c["platforms"]))
    if c.get("classifications"):
        when.append("Тип: " + ", ".join(CLASSIFICATIONS_RU.get(x, x) for x in c["classifications"]))
    if c.get("sectors"):
        when.append("Отрасль: " + ", ".join(SECTOR_NAMES_RU.get(s, s) for s in c["sectors"]))
    if c.get("territory_id"):
        territory = session.get(Territory, c["territory_id"])
        when.append(f"Территория: {territory.full_name if territory else c['territory_id']}")
    if c.get("institution_ids") or c.get("page_ids"):
        when.append("Учреждения или страницы по списку (задан через API)")
    then: list[str] = []
    if a.get("route_to_institution_id"):
        institution = session.get(Institution, a["route_to_institution_id"])
        then.append(
            f"Передать: {institution.name if institution else a['route_to_institution_id']}"
        )
    if a.get("category_id"):
        category = session.get(Category, a["category_id"])
        then.append(f"Категория: {category.name if category else a['category_id']}")
    if a.get("priority") == "urgent":
        then.append("Срочный")
    if a.get("dismiss_reason"):
        then.append("Снять: " + DISMISS_REASONS_RU.get(a["dismiss_reason"], a["dismiss_reason"]))
    return {"when": when or ["Любой вопрос"], "then": then}
