"""JSON API for administrators' integrations: API tokens and outgoing webhook subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from app.auth import service as auth_service
from app.auth.deps import ApiAdminDep
from app.auth.models import ApiToken, TokenCreate, TokenCreated, TokenRead, User
from app.core.api import (
    ERROR_RESPONSES,
    MAX_ID,
    Listing,
    PathId,
    clamp_limit,
    encode_cursor,
    id_cursor,
)
from app.core.clock import ClockDep
from app.core.crypto import Cipher
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.outbox import subscriptions
from app.outbox.models import (
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    SubscriptionUpdate,
)

# Mounted under /api/v1 by app.answering.api.
router = APIRouter(responses=ERROR_RESPONSES, tags=["administration"])


def _cipher(request: Request) -> Cipher:
    cipher: Cipher = request.app.state.cipher
    return cipher


# --- API tokens (administrators) --------------------------------------------------------------


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    name="api:token_create",
    summary="Выпустить API-токен",
)
def create_token(data: TokenCreate, session: SessionDep, admin: ApiAdminDep) -> TokenCreated:
    """A bearer token for a user. The token itself is in this answer only: Otklik keeps
    its hash, so copy it now."""
    owner = session.get(User, data.user_id)
    if owner is None:
        raise Invalid("Пользователь не найден", code="invalid_user")
    token, plain = auth_service.create_token(session, owner, data.name)
    session.commit()
    assert token.id is not None
    return TokenCreated(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        prefix=token.prefix,
        token=plain,
        created_at=token.created_at,
    )


@router.get(
    "/tokens",
    response_model=Listing[TokenRead],
    name="api:token_list",
    summary="API-токены",
)
def list_tokens(
    session: SessionDep,
    admin: ApiAdminDep,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[TokenRead]:
    """Tokens (newest first) with their prefix, last use and revocation; never the token."""
    size = clamp_limit(limit)
    query = select(ApiToken).order_by(col(ApiToken.id).desc()).limit(size + 1)
    after = id_cursor(cursor)
    if after:
        query = query.where(col(ApiToken.id) < after)
    if user_id is not None:
        query = query.where(col(ApiToken.user_id) == user_id)
    rows = session.exec(query).all()
    items = [TokenRead.model_validate(t) for t in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenRead,
    name="api:token_revoke",
    summary="Отозвать API-токен",
)
def revoke_token(
    token_id: PathId, session: SessionDep, admin: ApiAdminDep, clock: ClockDep
) -> TokenRead:
    """The token stops working at once; it stays listed with `revoked_at`."""
    token = auth_service.revoke_token(session, token_id, clock())
    session.commit()
    return TokenRead.model_validate(token)


# --- outgoing webhook subscriptions (administrators) ------------------------------------------


@router.post(
    "/webhook-subscriptions",
    response_model=SubscriptionCreated,
    status_code=201,
    name="api:subscription_create",
    summary="Подписать адрес на события",
)
def create_subscription(
    data: SubscriptionCreate,
    request: Request,
    session: SessionDep,
    admin: ApiAdminDep,
    clock: ClockDep,
) -> SubscriptionCreated:
    """Events are POSTed as JSON with `X-Otklik-Signature: sha256=<hex HMAC-SHA256 of the
    body>` (like the generic source), `X-Otklik-Event` and `X-Otklik-Delivery` (repeated on
    retries: deduplicate by it). The secret is in this answer only."""
    subscription, secret = subscriptions.create(session, data, _cipher(request), now=clock())
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
    subscription_id: PathId, data: SubscriptionUpdate, session: SessionDep, admin: ApiAdminDep
) -> SubscriptionRead:
    """Change the URL or the events, or pause deliveries with `is_active: false`."""
    subscription = subscriptions.update(session, subscription_id, data)
    session.commit()
    return SubscriptionRead.model_validate(subscription)


@router.delete(
    "/webhook-subscriptions/{subscription_id}",
    status_code=204,
    name="api:subscription_delete",
    summary="Удалить подписку",
)
def delete_subscription(
    subscription_id: PathId, session: SessionDep, admin: ApiAdminDep
) -> Response:
    """Deliveries still waiting are cancelled."""
    subscriptions.delete(session, subscription_id)
    session.commit()
    return Response(status_code=204)
