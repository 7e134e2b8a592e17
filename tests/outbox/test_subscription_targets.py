"""Outgoing webhook subscriptions point only at public http(s) addresses, unless an
administrator allows internal ones by setting: events must not probe the services beside
Otklik (cloud metadata, the database's admin page, localhost)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import Role
from app.core.config import Settings
from app.core.errors import Invalid
from app.outbox.subscriptions import check_target
from app.questions import outgoing
from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
from tests.conftest import FrozenClock
from tests.factories.auth import auth_headers, make_user
from tests.outbox.outbox_helpers import CIPHER, FakePlatform, run, vk_wall


def _names(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: table.get(host, [])


PUBLIC = _names({"sed.example.ru": ["93.184.216.34"], "inside.example.ru": ["10.20.0.7"]})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost/hook",  # resolves to loopback
        "http://inside.example.ru/hook",  # a public name for a private address
        "http://10.0.0.5/hook",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",  # carrier-grade NAT
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    resolve = _names({"localhost": ["127.0.0.1", "::1"], "inside.example.ru": ["10.20.0.7"]})
    with pytest.raises(Invalid) as refused:
        check_target(url, allow_private=False, resolve=resolve)
    assert refused.value.code == "subscription_url_private"
    check_target(url, allow_private=True, resolve=resolve)  # the setting allows them


@pytest.mark.parametrize("url", ["ftp://sed.example.ru/x", "file:///etc/passwd", "https:///x"])
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_target(url, allow_private=True, resolve=PUBLIC)
    assert refused.value.code == "bad_url"


def test_public_addresses_and_unknown_names_pass() -> None:
    check_target("https://sed.example.ru/otklik/events", allow_private=False, resolve=PUBLIC)
    check_target("https://93.184.216.34:8443/h", allow_private=False, resolve=PUBLIC)
    # A name that does not resolve now reaches nothing now; it is checked again at delivery.
    check_target("https://not-yet.example.ru/h", allow_private=False, resolve=PUBLIC)


def test_the_api_refuses_an_internal_subscription_url(client: TestClient, session: Session) -> None:
    headers = auth_headers(session, make_user(session, Role.admin))
    for url in ("http://127.0.0.1:8000/api/v1/questions", "http://localhost:5432/"):
        answer = client.post(
            "/api/v1/webhook-subscriptions",
            json={"url": url, "events": ["question.answered"]},
            headers=headers,
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "subscription_url_private"
        assert "внутреннюю сеть" in answer.json()["error"]["message"]
    assert session.exec(select(WebhookSubscription)).all() == []


def test_a_delivery_to_an_internal_address_is_never_sent(
    session: Session, connection: sa.Connection, settings: Settings, clock: FrozenClock
) -> None:
    # Stored before the rule existed, or a name that came to resolve inside.
    session.add(
        WebhookSubscription(
            url="http://169.254.169.254/latest/meta-data/",
            secret_enc=CIPHER.encrypt("s3cret-for-signing-0123"),
            events=["question.answered"],
        )
    )
    outgoing.emit(session, "question.answered", vk_wall(session, clock), clock())
    session.commit()
    fake = FakePlatform([httpx.Response(204)])
    run(connection, settings, clock, fake)
    assert fake.calls == []
    (item,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.webhook)).all()
    session.refresh(item)
    assert item.status == OutboxStatus.failed
    assert item.error_code == "subscription_url_private"
