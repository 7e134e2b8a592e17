"""What the demo's administration pages show beyond the directory: a business calendar,
policy versions, categories, routing rules and canned responses, all made through the
services the pages and the API use.

Chosen so that the demo's story stays as it is: the policies take effect a month after
seeding (questions of the story keep the default norm), and the enabled rules only set
a category; the rule that would move questions elsewhere is switched off."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from app.answering import canned
from app.answering.models import CannedResponseCreate
from app.auth.models import User
from app.directory.models import Institution, Sector, Territory
from app.routing import rules as rules_mod
from app.routing import service as routing_service
from app.sla import policies

ROADS = "Министерство дорожного хозяйства и транспорта Челябинской области"
HOSPITAL = "ГБУЗ «Районная больница г. Чебаркуль»"


def seed(
    session: Session,
    *,
    region: Territory,
    institutions: dict[str, Institution],
    admin: User,
    now: datetime,
) -> None:
    """Add the examples; the caller commits."""
    clinic = policies.create_calendar(
        session,
        policies.CalendarWrite(
            name="Поликлиники: пн–пт 8:00–20:00, сб 9:00–14:00",
            weekly={
                **{str(d): [["08:00", "20:00"]] for d in range(5)},
                "5": [["09:00", "14:00"]],
            },
        ),
        now,
    )
    later = now + timedelta(days=30)
    policies.create_policy(
        session,
        policies.SlaPolicyCreate(
            name="Региональный норматив: первый ответ за 8 рабочих часов",
            territory_id=region.id,
            effective_from=later,
        ),
        by=admin.id,
        now=now,
    )
    policies.create_policy(
        session,
        policies.SlaPolicyCreate(
            name="Здравоохранение: первый ответ за 4 часа",
            sector=Sector.health,
            territory_id=region.id,
            first_response_minutes=4 * 60,
            urgent_first_response_minutes=2 * 60,
            calendar_id=clinic.id,
            effective_from=later,
        ),
        by=admin.id,
        now=now,
    )
    categories = {
        name: routing_service.create_category(
            session, routing_service.CategoryWrite(name=name, sector=sector)
        )
        for name, sector in [
            ("Дороги и тротуары", Sector.transport),
            ("Общественный транспорт", Sector.transport),
            ("Отопление и вода", Sector.housing),
            ("Запись к врачу", Sector.health),
        ]
    }
    examples = [
        (
            "Автобусы и маршруты",
            ["автобус", "маршрут", "расписание"],
            "Общественный транспорт",
            None,
            True,
        ),
        (
            "Отопление и вода",
            ["отопление", "батарея", "водоснабжение"],
            "Отопление и вода",
            None,
            True,
        ),
        (
            "Дороги и ямы — в министерство",
            ["дорога", "яма", "тротуар"],
            "Дороги и тротуары",
            ROADS,
            False,
        ),
    ]
    for name, words, category, route_to, enabled in examples:
        routing_service.create_rule(
            session,
            rules_mod.RoutingRuleWrite(
                name=name,
                enabled=enabled,
                conditions=rules_mod.RuleConditions(keywords=words),
                actions=rules_mod.RuleActions(
                    category_id=categories[category].id,
                    route_to_institution_id=institutions[route_to].id if route_to else None,
                ),
            ),
            now,
        )
    canned.create_canned(
        session,
        admin,
        CannedResponseCreate(
            title="Промежуточный ответ",
            text="{{citizen_name}}, здравствуйте! {{institution}} разбирается в вашем вопросе "
            "и ответит до {{expected_date}}.",
        ),
        now=now,
    )
    canned.create_canned(
        session,
        admin,
        CannedResponseCreate(
            institution_id=institutions[HOSPITAL].id,
            title="Запись к врачу",
            text="{{citizen_name}}, здравствуйте! Записаться можно на Госуслугах или по телефону "
            "регистратуры 8 (35168) 2-00-00 с 8:00 до 20:00.",
        ),
        now=now,
    )
