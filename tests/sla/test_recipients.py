"""Whom an institution's SLA alerts reach, read for many institutions at once."""

from __future__ import annotations

from sqlmodel import Session

from app.auth.models import Role
from app.sla.recipients import Recipients
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_territory


def test_operators_own_supervisors_and_the_chain_above_with_their_time_zones(
    session: Session,
) -> None:
    region = make_territory(session, timezone="Asia/Yekaterinburg")
    district = make_territory(session, parent_id=region.id, timezone="Asia/Omsk")
    town = make_territory(session, parent_id=district.id, timezone="Europe/Moscow")
    ministry = make_institution(session, territory_id=region.id)
    school = make_institution(session, territory_id=town.id, parent_id=ministry.id)
    other = make_institution(session, territory_id=town.id)

    teacher = make_user(session, Role.operator, institution_ids=[school.id])
    make_user(session, Role.operator, institution_ids=[other.id])
    gone = make_user(session, Role.operator, institution_ids=[school.id])
    gone.is_active = False  # left: no alerts
    session.add(gone)
    head = make_user(session, Role.supervisor, institution_id=ministry.id)  # a parent
    mayor = make_user(session, Role.supervisor, territory_id=town.id)
    mayor.timezone = "Asia/Tokyo"  # chosen in the profile
    session.add(mayor)
    governor = make_user(session, Role.supervisor, territory_id=region.id)
    prefect = make_user(session, Role.supervisor, territory_id=district.id)
    session.flush()

    found = Recipients(session)
    found.prefetch([school.id or 0, other.id or 0])
    assert [r.id for r in found.operators(school.id or 0)] == [teacher.id]
    # The teacher has no zone of their own: the school's (its territory's).
    assert [r.timezone for r in found.operators(school.id or 0)] == ["Europe/Moscow"]
    supervisors = {r.id: r.timezone for r in found.supervisors(school.id or 0)}
    assert supervisors == {head.id: "Europe/Moscow", mayor.id: "Asia/Tokyo"}
    assert [r.id for r in found.supervisors(other.id or 0)] == [mayor.id]
    chain = found.chain_supervisors(school.id or 0)
    assert [r.id for r in chain] == [prefect.id, governor.id]  # the nearest first
    assert [r.timezone for r in chain] == ["Asia/Omsk", "Asia/Yekaterinburg"]
