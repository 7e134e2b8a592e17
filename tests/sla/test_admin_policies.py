"""/admin/policies and /admin/calendars: the versions, the one in force for an institution
and moment with the deadlines of a sample question day by day, a new version from a date,
calendars with their hours and days, the production-calendar years; audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import AuditEvent
from app.directory.models import Institution
from app.sla import calendar_admin
from app.sla.models import BusinessCalendar, SlaPolicy
from tests.factories.admin_web import sign_in
from tests.factories.directory import make_institution, make_territory


@pytest.fixture
def school(session: Session) -> Institution:
    region = make_territory(session, name="Московская область", timezone="Europe/Moscow")
    school = make_institution(session, territory_id=region.id, name="Школа № 3")
    session.commit()
    return school


def test_deadline_preview_walks_over_the_new_year_holidays(
    client: TestClient, session: Session, school: Institution
) -> None:
    sign_in(client, session)
    page = client.get(f"/admin/policies?institution_id={school.id}&at=2026-12-30T15:00")
    assert page.status_code == 200
    assert "действует норматив по умолчанию" in page.text
    # 8 working hours: 3 on 30 December, 31 December and 1-10 January off, 5 on 11 January.
    assert 'datetime="2027-01-11T11:00:00' in page.text
    assert "праздник:" in page.text and "выходной" in page.text
    assert "рабочий день" in page.text


def test_a_new_version_from_a_date_is_in_force_from_then(
    client: TestClient, session: Session, school: Institution
) -> None:
    _, csrf = sign_in(client, session)
    bad = client.post(
        "/admin/policies",
        data={
            "csrf_token": csrf,
            "name": "",
            "scope": "institution",
            "first_hours": "abc",
            "warn_percent": "75",
        },
    )
    assert bad.status_code == 422
    assert "Назовите норматив" in bad.text and "укажите число часов" in bad.text
    assert "Выберите учреждение" in bad.text
    made = client.post(
        "/admin/policies",
        data={
            "csrf_token": csrf,
            "name": "Школа — 4 часа",
            "scope": "institution",
            "institution_id": str(school.id),
            "first_hours": "4",
            "final_hours": "45",
            "working_time": "1",
            "warn_percent": "80",
            "effective_from": "2026-04-01",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    policy = session.exec(select(SlaPolicy).where(SlaPolicy.name == "Школа — 4 часа")).one()
    assert policy.first_response_minutes == 240 and policy.warn_ratio == pytest.approx(0.8)
    assert policy.effective_from == datetime(2026, 3, 31, 21, 0, tzinfo=UTC)  # midnight in Moscow
    entry = session.exec(select(AuditEvent).where(AuditEvent.action == "policy.create")).one()
    assert entry.object_id == str(policy.id)
    before = client.get(f"/admin/policies?institution_id={school.id}&at=2026-03-31T12:00").text
    assert "действует норматив по умолчанию" in before
    after = client.get(f"/admin/policies?institution_id={school.id}&at=2026-04-01T12:00").text
    assert "действует «Школа — 4 часа»" in after
    assert "4\u00a0ч рабочего времени" in after
    wrong = client.get(f"/admin/policies?institution_id={school.id}&at=вчера")
    assert "Укажите дату и время" in wrong.text


def test_calendars_are_created_checked_and_kept_while_in_use(
    client: TestClient, session: Session, school: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, csrf = sign_in(client, session)
    form = {
        "csrf_token": csrf,
        "name": "Поликлиника",
        "timezone": "",
        "day0": "08:00-20:00",
        "day1": "08:00-20:00",
        "day2": "08:00-20:00",
        "day3": "08:00-20:00",
        "day4": "08:00-20:00",
        "day5": "9:00-14:00",
        "day6": "",
        "use_production_calendar": "1",
        "extra_days_off": "2026-06-15",
        "extra_working_days": "2026-06-14 10:00-14:00",
    }
    bad = client.post(
        "/admin/calendars", data={**form, "day6": "с утра", "extra_days_off": "15 июня"}
    )
    assert bad.status_code == 422
    assert "вс: часы как 09:00-13:00" in bad.text and "«15»: даты как 2027-01-09" in bad.text
    assert 'value="с утра"' in bad.text
    made = client.post("/admin/calendars", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text
    row = session.exec(select(BusinessCalendar).where(BusinessCalendar.name == "Поликлиника")).one()
    assert row.weekly["5"] == [["09:00", "14:00"]] and "6" not in row.weekly
    assert row.extra_working_days == {"2026-06-14": [["10:00", "14:00"]]}
    listing = client.get("/admin/calendars").text
    assert "пн–пт 08:00–20:00; сб 09:00–14:00" in listing
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "calendar.create")).one()
    # In use by a policy: deleting is refused with the reason.
    session.add(SlaPolicy(name="Поликлиника", calendar_id=row.id, institution_id=school.id))
    session.commit()
    refused = client.post(f"/admin/calendars/{row.id}/delete", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "используется" in refused.text
    assert session.get(BusinessCalendar, row.id) is not None
    # The production calendar: next year's missing is said.
    assert "Нет календаря на" not in listing
    known = {y: v for y, v in calendar_admin.PRODUCTION_YEARS.items() if y != 2027}
    monkeypatch.setattr(calendar_admin, "PRODUCTION_YEARS", known)
    assert "Нет календаря на 2027 год" in client.get("/admin/calendars").text
