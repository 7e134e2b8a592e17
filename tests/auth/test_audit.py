"""The audit log: written in the caller's transaction, secrets masked, sign-ins recorded."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.models import AuditEvent, Role
from app.core.config import Settings
from tests.factories.auth import PASSWORD, make_user


def _events(session: Session, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(col(AuditEvent.id))
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.exec(query).all())


def test_record_masks_secrets_and_keeps_only_changed_fields(session: Session) -> None:
    admin = make_user(session, Role.admin, login="audit-admin")
    audit.record(
        session,
        actor=admin,
        action="page.update",
        object_type="page",
        object_id=7,
        before={"name": "Старое", "access_token": "vk1.a.old", "secret": "s1", "url": "u"},
        after={
            "name": "Новое",
            "access_token": "vk1.a.new",
            "secret": "s1",
            "url": "u",
            "nested": {"api_key": "k", "at": datetime(2026, 1, 2, tzinfo=UTC)},
        },
        address="10.0.0.5",
        summary="Страница переименована",
    )
    (event,) = _events(session, "page.update")
    assert event.actor_id == admin.id and event.actor_login == "audit-admin"
    assert event.object_type == "page" and event.object_id == "7"
    assert event.address == "10.0.0.5"
    # The unchanged url and secret are left out; the replaced token shows as changed, masked.
    assert event.before == {"name": "Старое", "access_token": audit.MASK}
    assert event.after == {
        "name": "Новое",
        "access_token": audit.MASK,
        "nested": {"api_key": audit.MASK, "at": "2026-01-02T00:00:00+00:00"},
    }
    dump = repr(event.before) + repr(event.after)
    assert "vk1.a" not in dump and "s1" not in dump


def test_record_does_not_commit(session: Session) -> None:
    audit.record(session, actor=None, action="x.test", object_type="x", object_id=None)
    session.rollback()
    assert _events(session, "x.test") == []


def test_empty_secret_is_not_masked(session: Session) -> None:
    audit.record(
        session,
        actor=None,
        action="page.create",
        object_type="page",
        object_id=1,
        after={"secret": "", "password": None, "name": "a" * 3000},
    )
    (event,) = _events(session, "page.create")
    assert event.after is not None
    assert event.after["secret"] == "" and event.after["password"] is None
    assert len(event.after["name"]) == 2001


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_sign_ins_are_recorded_with_the_address(client: TestClient, session: Session) -> None:
    user = make_user(session, Role.admin, login="petrov")
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"login": "petrov", "password": "nope", "csrf_token": token})
    client.post("/login", data={"login": "ghost", "password": "nope", "csrf_token": token})
    response = client.post(
        "/login",
        data={"login": "petrov", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    failed = _events(session, "sign_in.failed")
    assert [(e.object_id, e.actor_id, e.address) for e in failed] == [
        (str(user.id), None, "testclient"),
        (None, None, "testclient"),
    ]
    assert "ghost" in failed[1].summary
    assert all("nope" not in repr(e.after) for e in failed)
    (ok,) = _events(session, "sign_in.success")
    assert ok.actor_id == user.id and ok.address == "testclient"


def test_entries_filter_by_actor_action_object_and_period(session: Session) -> None:
    a = make_user(session, Role.admin, login="fa")
    b = make_user(session, Role.admin, login="fb")
    t1 = datetime(2026, 3, 1, tzinfo=UTC)
    t2 = datetime(2026, 3, 5, tzinfo=UTC)
    audit.record(session, actor=a, action="user.create", object_type="user", object_id=1, at=t1)
    audit.record(session, actor=b, action="user.update", object_type="user", object_id=2, at=t2)
    audit.record(session, actor=b, action="page.update", object_type="page", object_id=2, at=t2)

    def actions(**kw: object) -> list[str]:
        rows, _ = audit.entries(session, audit.AuditFilter(**kw), limit=10)  # type: ignore[arg-type]
        return [r.action for r in rows]

    assert actions(actor_id=b.id) == ["page.update", "user.update"]
    assert actions(action="user") == ["user.update", "user.create"]
    assert actions(action="user.create") == ["user.create"]
    assert actions(object_type="user", object_id="2") == ["user.update"]
    assert actions(since=datetime(2026, 3, 2, tzinfo=UTC), object_type="user") == ["user.update"]
    assert actions(until=datetime(2026, 3, 2, tzinfo=UTC)) == ["user.create"]
    first, more = audit.entries(session, audit.AuditFilter(actor_id=b.id), limit=1)
    assert more
    rest, more = audit.entries(
        session, audit.AuditFilter(actor_id=b.id), limit=1, before_id=first[0].id
    )
    assert [r.action for r in rest] == ["user.update"] and not more


def test_the_command_line_is_audited_too(
    live_engine: sa.Engine, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    # The commands read the (cached) settings: these point at the test database.
    monkeypatch.setattr("app.cli.get_settings", lambda: settings)
    # ... and the test's engine: a command's own would outlive it unclosed.
    monkeypatch.setattr("app.cli.make_engine", lambda url, **kwargs: live_engine)
    runner = CliRunner()
    made = runner.invoke(cli, ["users", "create", "cli.admin", "--role", "admin"])
    assert made.exit_code == 0, made.output
    token = runner.invoke(cli, ["tokens", "create", "cli.admin", "--name", "sed"])
    assert token.exit_code == 0, token.output
    rows = db.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    assert [(e.action, e.actor_id) for e in rows] == [("user.create", None), ("token.create", None)]
    assert "командной строки" in rows[0].summary
    plain = token.output.strip().splitlines()[-1]
    assert plain.startswith("otk_") and plain not in repr(rows[1].after)
