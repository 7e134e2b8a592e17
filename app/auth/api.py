"""JSON API for administrators: users, API tokens and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from app.auth import audit, tokens, users
from app.auth import service as auth_service
from app.auth.deps import ApiAdminDep, SettingsDep, client_address
from app.auth.models import (
    AuditEventRead,
    Role,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserCreated,
    UserRead,
    UserUpdate,
)
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


def invitation_url(settings_base: str, plain: str) -> str:
    # In the query: the request log records paths, never queries.
    return f"{settings_base.rstrip('/')}/invite?{urlencode({'token': plain})}"


# --- users (administrators) -------------------------------------------------------------------


@router.get(
    "/users", response_model=Listing[UserRead], name="api:user_list", summary="Пользователи"
)
def list_users(
    session: SessionDep,
    admin: ApiAdminDep,
    q: Annotated[str, Query(max_length=150, description="login, name or e-mail contains")] = "",
    role: Role | None = None,
    active: bool | None = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[UserRead]:
    """Users in id order, with role, scope and activity; never a password."""
    size = clamp_limit(limit)
    rows, more = users.list_users(
        session, q=q, role=role, active=active, limit=size, after_id=id_cursor(cursor) or None
    )
    items = [auth_service.user_read(session, u) for u in rows]
    return Listing(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get(
    "/users/{user_id}", response_model=UserRead, name="api:user_get", summary="Пользователь"
)
def get_user(user_id: PathId, session: SessionDep, admin: ApiAdminDep) -> UserRead:
    return auth_service.user_read(session, users.get_user(session, user_id))


@router.post(
    "/users",
    response_model=UserCreated,
    status_code=201,
    name="api:user_create",
    summary="Создать пользователя",
)
def create_user(
    data: UserCreate,
    request: Request,
    session: SessionDep,
    admin: ApiAdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    invite: Annotated[bool, Query(description="an invitation link instead of a password")] = False,
) -> UserCreated:
    """A user with a role and scope (`institution_ids` for an operator, `territory_id` or
    `institution_id` for a supervisor). Without `password` the answer carries a generated
    one, or with `invite=true` an invitation link: shown in this answer only."""
    user, credential = users.create(
        session, data, by=admin, now=clock(), address=client_address(request), invite=invite
    )
    session.commit()
    read = auth_service.user_read(session, user)
    return UserCreated(
        **read.model_dump(),
        password=credential.password,
        invitation_url=invitation_url(settings.base_url, credential.invitation)
        if credential.invitation
        else None,
    )


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    name="api:user_update",
    summary="Изменить пользователя",
)
def update_user(
    user_id: PathId,
    changes: UserUpdate,
    request: Request,
    session: SessionDep,
    admin: ApiAdminDep,
    clock: ClockDep,
) -> UserRead:
    """Change name, e-mail, role, scope or `active` (only the fields given). `active:
    false` ends the user's sessions and revokes their tokens at once."""
    user = users.get_user(session, user_id)
    users.update(session, user, changes, by=admin, now=clock(), address=client_address(request))
    session.commit()
    return auth_service.user_read(session, user)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserRead,
    name="api:user_deactivate",
    summary="Отключить пользователя",
)
def deactivate_user(
    user_id: PathId, request: Request, session: SessionDep, admin: ApiAdminDep, clock: ClockDep
) -> UserRead:
    """The user can no longer sign in; their sessions end and tokens are revoked at once."""
    user = users.get_user(session, user_id)
    users.deactivate(session, user, by=admin, now=clock(), address=client_address(request))
    session.commit()
    return auth_service.user_read(session, user)


# --- API tokens (administrators) --------------------------------------------------------------


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    name="api:token_create",
    summary="Выпустить API-токен",
)
def create_token(
    data: TokenCreate, request: Request, session: SessionDep, admin: ApiAdminDep, clock: ClockDep
) -> TokenCreated:
    """A bearer token for a user. The token itself is in this answer only: Otklik keeps
    its hash, so copy it now."""
    token, plain = tokens.issue(
        session, data.user_id, data.name, by=admin, now=clock(), address=client_address(request)
    )
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
    rows, more = tokens.listing(
        session, user_id=user_id, limit=size, before_id=id_cursor(cursor) or None
    )
    items = [TokenRead.model_validate(t) for t, _ in rows]
    return Listing(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenRead,
    name="api:token_revoke",
    summary="Отозвать API-токен",
)
def revoke_token(
    token_id: PathId, request: Request, session: SessionDep, admin: ApiAdminDep, clock: ClockDep
) -> TokenRead:
    """The token stops working at once; it stays listed with `revoked_at`."""
    token = tokens.revoke(session, token_id, by=admin, now=clock(), address=client_address(request))
    session.commit()
    return TokenRead.model_validate(token)


# --- the audit log ----------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    # An instant without an offset is read as UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _object(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    kind, _, ident = value.partition(":")
    if not kind.strip() or len(kind) > 40 or len(ident) > 64:
        raise Invalid("object: тип или тип:id, например user:5", code="invalid_object")
    return kind.strip(), ident.strip() or None


@router.get("/audit", response_model=Listing[AuditEventRead], include_in_schema=False)
@router.get(
    "/audit-log",
    response_model=Listing[AuditEventRead],
    name="api:audit_log",
    summary="Журнал изменений",
)
def audit_log(
    session: SessionDep,
    admin: ApiAdminDep,
    actor_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    object: Annotated[
        str | None, Query(max_length=110, description="`type` or `type:id`, e.g. `user:5`")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="`user` (every user.*) or `user.create`")
    ] = None,
    since: Annotated[datetime | None, Query(alias="from", description="at or after")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="before")] = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[AuditEventRead]:
    """Audit entries, newest first: who, when, from which address, what object, and the
    fields before → after (credentials masked). Entries cannot be changed or deleted."""
    size = clamp_limit(limit)
    object_type, object_id = _object(object)
    f = audit.AuditFilter(
        actor_id=actor_id,
        action=action or None,
        object_type=object_type,
        object_id=object_id,
        since=_utc(since),
        until=_utc(until),
    )
    rows, more = audit.entries(session, f, limit=size, before_id=id_cursor(cursor) or None)
    items = [AuditEventRead.model_validate(r) for r in rows]
    return Listing(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
