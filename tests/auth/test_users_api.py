"""`/api/v1/users` and the users service: create, change role and scope, deactivate
(sessions and tokens end at once), reset; every change in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import invitations, login_sessions, service, users
from app.auth.models import AuditEvent, LoginSession, Role, User, UserCreate, UserUpdate
from app.core.errors import NotFound
from tests.conftest import FrozenClock
from tests.factories.auth import PASSWORD, auth_headers, make_token, make_user
from tests.factories.directory import make_institution, make_territory

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _audit(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        ).all()
    )


def test_api_creates_lists_changes_and_deactivates_a_user(
    client: TestClient, session: Session
) -> None:
    admin = make_user(session, Role.admin, login="chief")
    headers = auth_headers(session, admin)
    school = make_institution(session, name="Школа № 1")
    clinic = make_institution(session, name="Поликлиника")
    created = client.post(
        "/api/v1/users",
        json={
            "login": "ivanova",
            "name": "Иванова А. П.",
            "role": "operator",
            "institution_ids": [school.id],
            "email": "ivanova@example.ru",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["institution_ids"] == [school.id] and body["invitation_url"] is None
    # A generated password, shown once, that signs in and passes the policy.
    assert len(body["password"]) >= 10
    new_user = session.get(User, body["id"])
    assert new_user is not None
    assert service.verify_password(body["password"], new_user.password_hash)

    listed = client.get("/api/v1/users", params={"q": "иванова"}, headers=headers).json()
    assert [u["login"] for u in listed["items"]] == ["ivanova"]
    assert "password" not in listed["items"][0]
    assert client.get(f"/api/v1/users/{body['id']}", headers=headers).json()["login"] == "ivanova"
    assert client.get("/api/v1/users/999999", headers=headers).status_code == 404

    changed = client.patch(
        f"/api/v1/users/{body['id']}",
        json={"role": "supervisor", "institution_id": clinic.id},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "supervisor"
    assert changed.json()["institution_ids"] == [] and changed.json()["institution_id"] == clinic.id

    user_token = make_token(session, new_user)
    assert (
        client.get(
            "/api/v1/questions", headers={"Authorization": f"Bearer {user_token}"}
        ).status_code
        == 200
    )
    off = client.patch(f"/api/v1/users/{body['id']}", json={"active": False}, headers=headers)
    assert off.status_code == 200 and off.json()["is_active"] is False
    # Their token ends at once.
    assert (
        client.get(
            "/api/v1/questions", headers={"Authorization": f"Bearer {user_token}"}
        ).status_code
        == 401
    )

    (create,) = _audit(session, "user.create")
    assert create.actor_id == admin.id and create.object_id == str(body["id"])
    assert create.after is not None and create.after["institution_ids"] == [school.id]
    assert "password" not in create.after and body["password"] not in repr(create.after)
    (update,) = _audit(session, "user.update")
    assert update.before == {
        "role": "operator",
        "institution_ids": [school.id],
        "institution_id": None,
    }
    assert update.after == {
        "role": "supervisor",
        "institution_ids": [],
        "institution_id": clinic.id,
    }
    (deactivate,) = _audit(session, "user.deactivate")
    assert deactivate.after == {"is_active": False, "api_access_revoked": 1}


def test_api_refuses_bad_input_in_russian_and_non_admins(
    client: TestClient, session: Session
) -> None:
    admin = make_user(session, Role.admin, login="chief")
    headers = auth_headers(session, admin)
    school = make_institution(session)
    cases = [
        ({"login": "-x y", "role": "admin"}, "Логин"),
        ({"login": "chief", "role": "admin"}, "уже занят"),
        ({"login": "op1", "role": "operator"}, "хотя бы одно учреждение"),
        ({"login": "op1", "role": "operator", "institution_ids": [999999]}, "Такого учреждения"),
        ({"login": "sv1", "role": "supervisor"}, "территорию или учреждение"),
        ({"login": "ad1", "role": "admin", "password": "1234567890"}, "распространён"),
        ({"login": "ad1", "role": "admin", "password": "short"}, "не короче 10"),
        ({"login": "ad1", "role": "admin", "email": "nope"}, "name@example.ru"),
    ]
    for data, words in cases:
        answer = client.post("/api/v1/users", json=data, headers=headers)
        assert answer.status_code == 422, (data, answer.text)
        assert words in answer.json()["error"]["message"], (data, answer.text)
    operator = make_user(session, Role.operator, institution_ids=[school.id])
    for method, path in (("GET", "/api/v1/users"), ("POST", "/api/v1/users")):
        answer = client.request(
            method,
            path,
            json={"login": "zz", "role": "admin"},
            headers=auth_headers(session, operator),
        )
        assert answer.status_code == 403
    assert _audit(session, "user.create") == []


def test_invitation_link_sets_a_password_once(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    admin = make_user(session, Role.admin, login="chief")
    answer = client.post(
        "/api/v1/users",
        params={"invite": "true"},
        json={"login": "newbie", "role": "admin"},
        headers=auth_headers(session, admin),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["password"] is None and "/invite?token=" in body["invitation_url"]
    plain = body["invitation_url"].split("token=", 1)[1]
    user = session.get(User, body["id"])
    assert user is not None and user.password_hash is None
    with pytest.raises(service.FormInvalid) as refused:
        invitations.accept_invitation(
            session, plain, password="newbie", repeat="newbie", now=clock()
        )
    assert "не короче" in refused.value.errors["password"]
    invitations.accept_invitation(
        session, plain, password=PASSWORD, repeat=PASSWORD, now=clock(), address="1.2.3.4"
    )
    assert service.verify_password(PASSWORD, user.password_hash)
    with pytest.raises(NotFound):
        invitations.accept_invitation(
            session, plain, password=PASSWORD, repeat=PASSWORD, now=clock()
        )
    (entry,) = _audit(session, "user.password_set")
    assert entry.actor_id == user.id and entry.address == "1.2.3.4"


def test_invitation_expires(session: Session) -> None:
    admin = make_user(session, Role.admin)
    user, credential = users.create(
        session, UserCreate(login="late", role=Role.admin), by=admin, now=NOW, invite=True
    )
    assert credential.invitation is not None and credential.password is None
    assert invitations.invitation_user(session, credential.invitation, NOW) == user
    later = NOW + invitations.INVITATION_LIFETIME
    assert invitations.invitation_user(session, credential.invitation, later) is None


def test_deactivation_ends_sessions_and_reset_ends_them_too(session: Session) -> None:
    admin = make_user(session, Role.admin, login="chief")
    other = make_user(session, Role.admin, login="second")
    assert login_sessions.login(session, "second", PASSWORD, NOW, 12) is not None
    credential = users.reset_password(session, other, by=admin, now=NOW)
    assert credential.password and service.verify_password(credential.password, other.password_hash)
    sessions = select(LoginSession).where(LoginSession.user_id == other.id)
    assert session.exec(sessions).all() == []
    assert login_sessions.login(session, "second", credential.password, NOW, 12) is not None
    users.deactivate(session, other, by=admin, now=NOW)
    assert session.exec(sessions).all() == []
    assert login_sessions.login(session, "second", credential.password, NOW, 12) is None
    reset = _audit(session, "user.password_reset")[0]
    assert credential.password not in repr(reset.after)


def test_an_admin_cannot_lock_themselves_or_everyone_out(session: Session) -> None:
    admin = make_user(session, Role.admin, login="only")
    with pytest.raises(service.FormInvalid, match="свою учётную запись"):
        users.deactivate(session, admin, by=admin, now=NOW)
    with pytest.raises(service.FormInvalid, match="снять с себя"):
        users.update(session, admin, UserUpdate(role=Role.operator), by=admin, now=NOW)
    territory = make_territory(session)
    supervisor = make_user(session, Role.supervisor, territory_id=territory.id)
    # Moving a supervisor to another subtree keeps one scope only.
    school = make_institution(session, territory_id=territory.id)
    users.update(session, supervisor, UserUpdate(institution_id=school.id), by=admin, now=NOW)
    assert supervisor.territory_id is None and supervisor.institution_id == school.id
