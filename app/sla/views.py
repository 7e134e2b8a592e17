"""JSON API of SLA policies (versioned) and business calendars."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import ApiAdminDep, ApiUserDep
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.json_api import ERROR_RESPONSES, Listing, clamp_limit, encode_cursor, id_cursor
from app.sla import admin, policies
from app.sla.policies import CalendarRead, CalendarWrite, SlaPolicyCreate, SlaPolicyRead

router = APIRouter(prefix="/api/v1", tags=["sla"], responses=ERROR_RESPONSES)


@router.post(
    "/sla-policies", response_model=SlaPolicyRead, status_code=201, name="api:sla_policy_create"
)
def create_policy(
    data: SlaPolicyCreate, session: SessionDep, user: ApiAdminDep, clock: ClockDep
) -> SlaPolicyRead:
    """A new version of a norm for a territory (and its subtree), a sector or an institution.

    Versions are never edited: post a new one with a later `effective_from`; questions
    created before it keep the version they were created under.
    """
    policy = policies.create_policy(session, data, by=user.id, now=clock())
    session.commit()
    return SlaPolicyRead.model_validate(policy, from_attributes=True)


@router.get("/sla-policies", response_model=Listing[SlaPolicyRead], name="api:sla_policy_list")
def list_policies(
    session: SessionDep,
    user: ApiUserDep,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[SlaPolicyRead]:
    size = clamp_limit(limit)
    rows = policies.list_policies(session, after_id=id_cursor(cursor), limit=size + 1)
    items = [SlaPolicyRead.model_validate(p, from_attributes=True) for p in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.get(
    "/sla-policies/effective",
    response_model=SlaPolicyRead | None,
    name="api:sla_policy_effective",
)
def effective_policy(
    institution_id: int,
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
    at: datetime | None = None,
) -> SlaPolicyRead | None:
    """The version that a question of this institution created at `at` (default now) gets;
    null means the built-in default (8 working hours, urgent 4, final 7 x 8)."""
    policy = policies.resolve_policy(session, institution_id, at or clock())
    return None if policy is None else SlaPolicyRead.model_validate(policy, from_attributes=True)


@router.post("/calendars", response_model=CalendarRead, status_code=201, name="api:calendar_create")
def create_calendar(
    data: CalendarWrite, session: SessionDep, user: ApiAdminDep, clock: ClockDep
) -> CalendarRead:
    """Weekly hours per weekday ("0" is Monday; several intervals for a lunch break), an
    optional time zone (default: the question's territory's), the Russian production
    calendar on or off, extra days off and extra working days."""
    row = policies.create_calendar(session, data, clock())
    session.commit()
    return CalendarRead.model_validate(row, from_attributes=True)


@router.get("/calendars", response_model=Listing[CalendarRead], name="api:calendar_list")
def list_calendars(session: SessionDep, user: ApiUserDep) -> Listing[CalendarRead]:
    return Listing(
        items=[
            CalendarRead.model_validate(r, from_attributes=True)
            for r in policies.list_calendars(session)
        ]
    )


@router.get("/calendars/{calendar_id}", response_model=CalendarRead, name="api:calendar_get")
def get_calendar(calendar_id: int, session: SessionDep, user: ApiUserDep) -> CalendarRead:
    row = policies.get_calendar(session, calendar_id)
    return CalendarRead.model_validate(row, from_attributes=True)


@router.put("/calendars/{calendar_id}", response_model=CalendarRead, name="api:calendar_update")
def update_calendar(
    calendar_id: int, data: CalendarWrite, session: SessionDep, user: ApiAdminDep
) -> CalendarRead:
    """Replace a calendar; deadlines already set keep their values."""
    row = policies.update_calendar(session, calendar_id, data)
    session.commit()
    return CalendarRead.model_validate(row, from_attributes=True)


@router.delete("/calendars/{calendar_id}", status_code=204, name="api:calendar_delete")
def delete_calendar(calendar_id: int, session: SessionDep, user: ApiAdminDep) -> Response:
    """409 `calendar_in_use` while a policy refers to it."""
    policies.delete_calendar(session, calendar_id)
    session.commit()
    return Response(status_code=204)


# The policies' and calendars' admin pages (/admin/policies, /admin/calendars) have no
# /api/v1 prefix: this module's router becomes a plain one holding both.
_api = router
router = APIRouter()
router.include_router(_api)
router.include_router(admin.router)
