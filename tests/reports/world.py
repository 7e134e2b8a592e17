"""A small hand-built region whose figures are known by hand (used by the report tests).

Область (Asia/Yekaterinburg, UTC+5) > Город А (Школа, Администрация), Город Б (Больница).
Questions of March 2026, all written on Tuesday 10 March at 10:00 local:

| where          | what happened                                   | first response (working / wall min) |
| ---            | ---                                             | --- |
| Школа          | answered 15:00 the same day                     | met, 300 / 300 |
| Школа          | answered Thursday 11:00                         | missed, 1140 / 2940 |
| Школа          | never answered                                  | breached |
| Школа          | spam, dismissed                                 | — |
| Больница       | answered 11:00                                  | met, 60 / 60 |
| Больница       | thanks (no clock), left open                    | — |
| Администрация  | moved from Школа at 12:00, answered 17:00       | met, 420 / 420 |

and one question of February at Школа. Answered first responses: 60, 300, 420, 1140
working minutes (an even count: median 360, p90 924) and 60, 300, 420, 2940 wall
minutes (median 360, p90 2184).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.auth.models import Role
from app.core.config import Settings
from app.questions.models import Question
from app.routing import service as routing
from app.sla import watcher
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_territory
from tests.factories.questions import make_question, native_reply

T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # Tuesday 10:00 in Yekaterinburg (UTC+5)
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}
SPAM = "Заработок от 100000 в день https://x.example https://y.example"


def local(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC) - timedelta(hours=5)


def question(session: Session, institution_id: int | None, **kw: Any) -> Question:
    return make_question(session, institution_id=institution_id, **{"created_at": T0, **kw})


def answer(session: Session, q: Question, at: datetime) -> None:
    """The page answers on the platform at `at`."""
    native_reply(session, q, at=at)


def build(session: Session, settings: Settings) -> dict[str, Any]:
    region = make_territory(session, name="Область")
    town_a = make_territory(session, name="Город А", parent_id=region.id)
    town_b = make_territory(session, name="Город Б", parent_id=region.id)
    school = make_institution(session, name="Школа", territory_id=town_a.id, sector="education")
    admin = make_institution(
        session, name="Администрация", territory_id=town_a.id, sector="administration"
    )
    clinic = make_institution(session, name="Больница", territory_id=town_b.id, sector="health")
    boss = make_user(session, Role.admin)
    answer(session, question(session, school.id), local(10, 15))  # met, 300
    answer(session, question(session, school.id), local(12, 11))  # missed, 1140
    question(session, school.id)  # never answered: breached
    routing.dismiss(
        session,
        question(session, school.id, text=SPAM),
        reason="spam",
        note=None,
        by=boss,
        now=T0,
    )
    answer(session, question(session, clinic.id), local(10, 11))  # met, 60
    question(session, clinic.id, text="Огромное спасибо врачам, всё сделали быстро")
    moved = question(session, school.id)
    routing.transfer(
        session, moved, institution_id=admin.id or 0, reason="Не школа", by=boss, now=local(10, 12)
    )
    answer(session, moved, local(10, 17))  # met, 420, counted at the administration
    make_question(session, institution_id=school.id, created_at=datetime(2026, 2, 3, tzinfo=UTC))
    watcher.sweep(session, local(11, 9), settings)
    return {
        "region": region,
        "town_a": town_a,
        "town_b": town_b,
        "school": school,
        "admin": admin,
        "clinic": clinic,
        "boss": boss,
    }
