"""JSON API for administrators: outgoing webhook subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app.auth import audit
from app.auth.deps import ApiAdminDep, SettingsDep, client_address
from app.core.clock import ClockDep
from app.core.crypto import CipherDep
from app.core.db import SessionDep
from app.core.json_api import (
    ERROR_RESPONSES,
    Listing,
    PathId,
    clamp_limit,
    encode_cursor,
    id_cursor,
)
from app.outbox import admin as admin_pages
from app.outbox import subscriptions
from app.outbox.models import (
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    SubscriptionUpdate,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["administration"])


@router.post(
    "/webhook-subscriptions",
    response_model=SubscriptionCreated,
    status_code=201,
    name="api:subscription_create",
    summary="Подписать адрес на события",
)
def create_subscription(
    data: SubscriptionCreate,
    cipher: CipherDep,
    session: SessionDep,
    admin: ApiAdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    request: Request,
) -> SubscriptionCreated:
    """Events are POSTed as JSON with `X-Otklik-Signature: sha256=<hex HMAC-SHA256 of the
    body>` (like the generic source), `X-Otklik-Event` and `X-Otklik-Delivery` (repeated on
    retries: deduplicate by it). The secret is in this answer only."""
    subscription, secret = subscriptions.create(
        session,
        data,
        cipher,
        now=clock(),
        allow_private=settings.outgoing_webhooks_allow_private,
    )
    admin_pages.record_change(
        session, admin, client_address(request), "subscription.create", subscription, None
    )
    session.commit()
    read = SubscriptionRead.model_validate(subscription)
    return SubscriptionCreated(**read.model_dump(), secret=secret)


@router.get(
    "/webhook-subscriptions",
    response_model=Listing[SubscriptionRead],
    name="api:subscription_list",
    summary="Подписки на события",
)
def list_subscriptions(
    session: SessionDep,
    admin: ApiAdminDep,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[SubscriptionRead]:
    size = clamp_limit(limit)
    rows = subscriptions.list_all(session, after_id=id_cursor(cursor), limit=size + 1)
    items = [SubscriptionRead.model_validate(s) for s in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.get(
    "/webhook-subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    name="api:subscription_get",
    summary="Подписка на события",
)
def get_subscription(
    subscription_id: PathId, session: SessionDep, admin: ApiAdminDep
) -> SubscriptionRead:
    return SubscriptionRead.model_validate(subscriptions.get(session, subscription_id))


@router.patch(
    "/webhook-subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    name="api:subscription_update",
    summary="Изменить подписку",
)
def update_subscription(
    subscription_id: PathId,
    data: SubscriptionUpdate,
    session: SessionDep,
    admin: ApiAdminDep,
    settings: SettingsDep,
    request: Request,
) -> SubscriptionRead:
    """Change the URL or the events, or pause deliveries with `is_active: false`."""
    before = audit.snapshot(subscriptions.get(session, subscription_id), admin_pages.AUDIT_FIELDS)
    subscription = subscriptions.update(
        session, subscription_id, data, allow_private=settings.outgoing_webhooks_allow_private
    )
    admin_pages.record_change(
        session, admin, client_address(request), "subscription.update", subscription, before
    )
    session.commit()
    return SubscriptionRead.model_validate(subscription)


@router.delete(
    "/webhook-subscriptions/{subscription_id}",
    status_code=204,
    name="api:subscription_delete",
    summary="Удалить подписку",
)
def delete_subscription(
    subscription_id: PathId, session: SessionDep, admin: ApiAdminDep, request: Request
) -> Response:
    """Deliveries still waiting are cancelled."""
    subscription = subscriptions.get(session, subscription_id)
    before = audit.snapshot(subscription, admin_pages.AUDIT_FIELDS)
    admin_pages.record_change(
        session, admin, client_address(request), "subscription.delete", subscription, before, {}
    )
    subscriptions.delete(session, subscription_id)
    session.commit()
    return Response(status_code=204)


class TestQueued(BaseModel):
    delivery_id: int


@router.post(
    "/webhook-subscriptions/{subscription_id}/test",
    response_model=TestQueued,
    status_code=202,
    name="api:subscription_test",
    summary="Отправить проверочное событие",
)
def queue_test(
    subscription_id: PathId,
    session: SessionDep,
    admin: ApiAdminDep,
    clock: ClockDep,
    request: Request,
) -> TestQueued:
    """Queue a signed `test` event (`X-Otklik-Event: test`) for this subscription only;
    the outbox delivers it with the usual retries. The answer names the delivery."""
    subscription = subscriptions.get(session, subscription_id)
    item = subscriptions.send_test(session, subscription_id, now=clock())
    assert item.id is not None
    admin_pages.record_change(
        session,
        admin,
        client_address(request),
        "subscription.test",
        subscription,
        None,
        {"delivery_id": item.id},
    )
    session.commit()
    return TestQueued(delivery_id=item.id)


# The administration's pages (/admin/subscriptions) have no /api/v1 prefix: this
# module's router becomes a plain one holding both.
_api = router
router = APIRouter()
router.include_router(_api)
router.include_router(admin_pages.router)
