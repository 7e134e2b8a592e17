"""/admin/tokens and /api/v1/tokens: issue (shown once), list with last use, revoke;
both audited; the audit page and API read the log."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.models import ApiToken, AuditEvent, Role, User
from tests.factories.auth import PASSWORD, auth_headers, make_user
from tests.factories.directory import make_institution


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.fixture
def admin(client: TestClient, session: Session) -> tuple[User, str]:
    user = make_user(session, Role.admin, login="chief", name="Главный А. А.")
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"login": "chief", "password": PASSWORD, "csrf_token": token})
    return user, _csrf(client.get("/admin/tokens").text)


def _audit(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        ).all()
    )


def test_issue_use_and_revoke_a_token_from_the_page(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    _, csrf = admin
    owner = make_user(session, Role.admin, login="sed.robot", name="СЭД")
    session.commit()  # a refused form rolls back to the last commit
    missing = client.post("/admin/tokens", data={"csrf_token": csrf, "user_id": "", "name": ""})
    assert missing.status_code == 422
    assert "Выберите пользователя" in missing.text and "Назовите токен" in missing.text
    issued = client.post(
        "/admin/tokens", data={"csrf_token": csrf, "user_id": str(owner.id), "name": "СЭД"}
    )
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    plain = re.search(r'<code id="secret">(otk_[^<]+)</code>', issued.text)
    assert plain, issued.text
    # It works for the API, and the list shows its last use but never the token.
    answer = client.get("/api/v1/questions", headers={"Authorization": f"Bearer {plain.group(1)}"})
    assert answer.status_code == 200
    listing = client.get("/admin/tokens")
    assert plain.group(1) not in listing.text and plain.group(1)[:10] in listing.text
    assert "ещё не использовался" not in listing.text
    token = session.exec(select(ApiToken).where(ApiToken.user_id == owner.id)).one()
    # Revoking in place (htmx) answers the row alone.
    row = client.post(
        f"/admin/tokens/{token.id}/revoke",
        data={"csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="token-{token.id}"')
    assert "Отозван" in row.text
    answer = client.get("/api/v1/questions", headers={"Authorization": f"Bearer {plain.group(1)}"})
    assert answer.status_code == 401
    # Without htmx: back to the list; revoking again changes nothing.
    again = client.post(
        f"/admin/tokens/{token.id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 303 and again.headers["location"].endswith("?done=revoked")
    assert (
        client.post("/admin/tokens/987654321/revoke", data={"csrf_token": csrf}).status_code == 404
    )
    (create,) = _audit(session, "token.create")
    assert create.after is not None and create.after["login"] == "sed.robot"
    assert plain.group(1) not in repr(create.after)
    assert len(_audit(session, "token.revoke")) == 1


def test_a_deactivated_user_gets_no_token(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    me, _ = admin
    school = make_institution(session)
    off = make_user(session, Role.operator, institution_ids=[school.id])
    off.is_active = False
    headers = auth_headers(session, me)
    answer = client.post("/api/v1/tokens", json={"user_id": off.id, "name": "x"}, headers=headers)
    assert answer.status_code == 422 and "отключён" in answer.json()["error"]["message"]


def test_api_tokens_are_audited(client: TestClient, session: Session) -> None:
    me = make_user(session, Role.admin, login="api.admin")
    headers = auth_headers(session, me)
    made = client.post("/api/v1/tokens", json={"user_id": me.id, "name": "ci"}, headers=headers)
    assert made.status_code == 201
    gone = client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=headers)
    assert gone.status_code == 200 and gone.json()["revoked_at"]
    assert [e.actor_id for e in _audit(session, "token.create")] == [me.id]
    assert [e.object_id for e in _audit(session, "token.revoke")] == [str(made.json()["id"])]


def test_audit_page_and_api_filter_and_page(
    client: TestClient, session: Session, admin: tuple[User, str]
) -> None:
    me, _ = admin
    school = make_institution(session, name="Школа № 9")
    for n in range(3):
        audit.record(
            session,
            actor=me,
            action="user.update",
            object_type="user",
            object_id=100 + n,
            before={"role": "operator", "institution_ids": [], "access_token": "vk1.a.x"},
            after={"role": "supervisor", "institution_ids": [school.id], "access_token": "vk1.b"},
            summary=f"<script>alert({n})</script>",
        )
    page = client.get("/admin/audit", params={"object_type": "user", "object_id": "101"})
    assert page.status_code == 200
    assert page.text.count('class="card audit__item"') == 1
    assert "Пользователь: изменение" in page.text
    assert "Оператор" in page.text and "Куратор" in page.text and "Школа № 9" in page.text
    assert "vk1." not in page.text and audit.MASK in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    bad = client.get("/admin/audit", params={"from": "2026-03-10", "to": "2026-03-01"})
    assert bad.status_code == 422 and "Конец периода раньше начала" in bad.text
    fragment = client.get("/admin/audit", params={"action": "user"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="audit"')

    headers = auth_headers(session, me)
    first = client.get(
        "/api/v1/audit-log",
        params={"object": "user", "action": "user.update", "limit": 2},
        headers=headers,
    ).json()
    assert [e["object_id"] for e in first["items"]] == ["102", "101"]
    rest = client.get(
        "/api/v1/audit-log",
        params={
            "object": "user",
            "action": "user.update",
            "limit": 2,
            "cursor": first["next_cursor"],
        },
        headers=headers,
    ).json()
    assert [e["object_id"] for e in rest["items"]] == ["100"] and rest["next_cursor"] is None
    one = client.get("/api/v1/audit-log", params={"object": "user:100"}, headers=headers).json()
    assert one["items"][0]["before"]["access_token"] == audit.MASK
    assert (
        client.get(
            "/api/v1/audit-log",
            params={"actor_id": me.id, "from": "2999-01-01T00:00:00"},
            headers=headers,
        ).json()["items"]
        == []
    )
    operator = make_user(session, Role.operator, institution_ids=[school.id])
    denied = client.get("/api/v1/audit-log", headers=auth_headers(session, operator))
    assert denied.status_code == 403
