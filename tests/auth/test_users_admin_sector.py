"""/admin/users: a supervisor's sector scope (issue 11: a sector department sees that
sector's institutions of a territory subtree) is set on the create and edit forms,
checked, audited, and shown in the list; what the supervisor then sees follows it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import service
from app.auth.models import AuditEvent, User
from app.directory.models import Sector
from tests.factories.admin_web import sign_in
from tests.factories.directory import make_institution, make_territory


@pytest.fixture
def world(session: Session) -> dict[str, int]:
    region = make_territory(session, name="Челябинская область")
    city = make_territory(session, name="Копейск", parent_id=region.id)
    school = make_institution(
        session, territory_id=city.id, name="Школа № 7", sector=Sector.education
    )
    garden = make_institution(
        session, territory_id=region.id, name="Детский сад № 3", sector=Sector.education
    )
    roads = make_institution(session, territory_id=city.id, name="Дороги", sector=Sector.transport)
    session.commit()  # a refused form rolls back to the last commit
    return {
        "region": region.id or 0,
        "city": city.id or 0,
        "school": school.id or 0,
        "garden": garden.id or 0,
        "roads": roads.id or 0,
    }


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        ).all()
    )


def _visible(session: Session, user: User) -> set[int]:
    query = service.visible_institution_ids(user)
    assert query is not None
    return set(session.execute(query).scalars())


def test_create_a_sector_supervisor_and_change_the_sector(
    client: TestClient, session: Session, world: dict[str, int]
) -> None:
    _, csrf = sign_in(client, session)
    form = client.get("/admin/users/new").text
    assert 'id="sector"' in form and "Все отрасли" in form and "Образование" in form
    created = client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf,
            "login": "minobr",
            "name": "Отдел образования",
            "role": "supervisor",
            "scope": f"t:{world['region']}",
            "sector": "education",
        },
    )
    assert created.status_code == 200, created.text
    person = session.exec(select(User).where(User.login == "minobr")).one()
    assert (person.territory_id, person.sector) == (world["region"], "education")
    assert _visible(session, person) == {world["school"], world["garden"]}
    (entry,) = _audit(session, "user.create")
    assert entry.after is not None and entry.after["sector"] == "education"

    url = f"/admin/users/{person.id}"
    page = client.get(url).text
    assert re.search(r'<option value="education"\s+selected', page)
    assert "отрасль «Образование»: территория «Челябинская область»" in page
    listed = client.get("/admin/users").text
    assert "отрасль «Образование»" in listed

    moved = client.post(
        url,
        data={
            "csrf_token": csrf,
            "name": "Отдел транспорта",
            "role": "supervisor",
            "scope": f"t:{world['city']}",
            "sector": "transport",
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303
    session.refresh(person)
    assert (person.territory_id, person.sector) == (world["city"], "transport")
    assert _visible(session, person) == {world["roads"]}
    (update,) = _audit(session, "user.update")
    assert update.before is not None and update.after is not None
    assert (update.before["sector"], update.after["sector"]) == ("education", "transport")
    # The audit log names the sectors in Russian.
    log = client.get("/admin/audit", params={"object_type": "user"}).text
    assert "Образование" in log and "Транспорт" in log

    # «Все отрасли» clears it: the whole territory again.
    client.post(
        url,
        data={
            "csrf_token": csrf,
            "name": "Куратор",
            "role": "supervisor",
            "scope": f"t:{world['city']}",
            "sector": "",
        },
        follow_redirects=False,
    )
    session.refresh(person)
    assert person.sector is None
    assert _visible(session, person) == {world["school"], world["roads"]}


@pytest.mark.parametrize(
    ("scope", "sector", "message"),
    [
        ("institution", "education", "Отрасль задаётся вместе с территорией"),
        ("region", "bakery", "Такой отрасли нет"),
    ],
)
def test_a_sector_without_a_territory_or_unknown_is_refused(
    client: TestClient,
    session: Session,
    world: dict[str, int],
    scope: str,
    sector: str,
    message: str,
) -> None:
    _, csrf = sign_in(client, session)
    chosen = f"i:{world['school']}" if scope == "institution" else f"t:{world['region']}"
    data = {
        "csrf_token": csrf,
        "login": "kurator",
        "name": "Куратор",
        "role": "supervisor",
        "scope": chosen,
        "sector": sector,
    }
    refused = client.post("/admin/users/new", data=data)
    assert refused.status_code == 422
    assert message in refused.text
    assert 'href="#sector"' in refused.text  # the error summary leads to the field
    assert session.exec(select(User).where(User.login == "kurator")).first() is None
    assert _audit(session, "user.create") == []
    # The same check on the edit form, and nothing changes.
    other = client.post(
        "/admin/users/new",
        data=data | {"sector": "", "login": "kurator2"},
        follow_redirects=False,
    )
    assert other.status_code == 200
    made = session.exec(select(User).where(User.login == "kurator2")).one()
    edit = client.post(
        f"/admin/users/{made.id}",
        data={k: v for k, v in data.items() if k != "login"},
    )
    assert edit.status_code == 422 and message in edit.text
    session.refresh(made)
    assert made.sector is None
