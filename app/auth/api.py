"""JSON API for administrators: API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from app.auth import service as auth_service
from app.auth.deps import ApiAdminDep
from app.auth.models import ApiToken, TokenCreate, TokenCreated, TokenRead, User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.json_api import (
    ERROR_RESPONSES,
    MAX_ID,
    Listing,
    PathId,
    clamp_limit,
    encode_cursor,
    id_cursor,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["administration"])


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
