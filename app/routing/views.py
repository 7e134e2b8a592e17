"""JSON API of routing: rules (and their dry-run), categories, transfers, dismissals,
reclassification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Field, SQLModel

from app.auth.deps import ApiAdminDep, ApiUserDep
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.json_api import ERROR_RESPONSES, Listing
from app.questions import queries
from app.questions.api import question_detail
from app.questions.models import QuestionDetail
from app.routing import admin, service
from app.routing.models import Category
from app.routing.rules import RoutingRuleRead, RoutingRuleWrite
from app.routing.service import CategoryWrite, RoutingRuleUpdate
from app.routing.trial import RuleTry, TryResult, try_rule

router = APIRouter(prefix="/api/v1", tags=["routing"], responses=ERROR_RESPONSES)


class TransferBody(SQLModel):
    institution_id: int
    reason: str = Field(min_length=1, max_length=1000)


class DismissBody(SQLModel):
    reason: str = Field(description="spam, gratitude, off_topic, duplicate, formal_appeal, other")
    note: str | None = Field(default=None, max_length=1000)


class ReclassifyBody(SQLModel):
    classification: str = Field(description="question, complaint, gratitude, other, spam")


class TransferTargetRead(SQLModel):
    id: int
    name: str
    territory: str = Field(description="Территория учреждения")
    sector: str


# --- questions ------------------------------------------------------------------


@router.get(
    "/questions/{question_id}/transfer-targets",
    response_model=Listing[TransferTargetRead],
    name="api:question_transfer_targets",
    summary="Куда можно передать вопрос",
)
def get_transfer_targets(
    question_id: int,
    session: SessionDep,
    user: ApiUserDep,
    q: Annotated[str | None, Query(max_length=200, description="слова из названия")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Listing[TransferTargetRead]:
    """The institutions of the question's region (all but its own), found by words of
    their name or territory: those of the question's territory first. An operator sees
    only their own institutions elsewhere; this list is how they find a transfer target."""
    question = queries.get_question(session, user, question_id)
    targets = service.transfer_targets(session, question, q=q, limit=limit)
    return Listing(
        items=[TransferTargetRead.model_validate(t, from_attributes=True) for t in targets]
    )


@router.post(
    "/questions/{question_id}/transfer",
    response_model=QuestionDetail,
    name="api:question_transfer",
    summary="Передать вопрос в другое учреждение",
)
def post_transfer(
    question_id: int, data: TransferBody, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """Move the question to another institution's queue with a reason; the SLA clock keeps
    running. The answer may be outside the caller's scope afterwards."""
    question = queries.get_question(session, user, question_id)
    service.transfer(
        session,
        question,
        institution_id=data.institution_id,
        reason=data.reason,
        by=user,
        now=clock(),
    )
    session.commit()
    return question_detail(session, question)


@router.post(
    "/questions/{question_id}/dismiss",
    response_model=QuestionDetail,
    name="api:question_dismiss",
    summary="Отметить как не требующий ответа",
)
def post_dismiss(
    question_id: int, data: DismissBody, session: SessionDep, user: ApiUserDep, clock: ClockDep
) -> QuestionDetail:
    """Close an open question without an answer; the reason code is counted in reports."""
    question = queries.get_question(session, user, question_id)
    service.dismiss(session, question, reason=data.reason, note=data.note, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


@router.post(
    "/questions/{question_id}/reclassify",
    response_model=QuestionDetail,
    name="api:question_reclassify",
    summary="Изменить классификацию",
)
def post_reclassify(
    question_id: int,
    data: ReclassifyBody,
    session: SessionDep,
    user: ApiUserDep,
    clock: ClockDep,
) -> QuestionDetail:
    """A question or complaint starts its SLA clocks from the citizen's original time."""
    question = queries.get_question(session, user, question_id)
    service.reclassify(session, question, classification=data.classification, by=user, now=clock())
    session.commit()
    return question_detail(session, question)


# --- rules ------------------------------------------------------------------------


@router.get("/routing-rules", response_model=Listing[RoutingRuleRead], name="api:routing_rule_list")
def list_rules(session: SessionDep, user: ApiAdminDep) -> Listing[RoutingRuleRead]:
    """All rules in the order they are tried (position, then id)."""
    return Listing(items=[service.rule_read(r) for r in service.list_rules(session)])


@router.post(
    "/routing-rules",
    response_model=RoutingRuleRead,
    status_code=201,
    name="api:routing_rule_create",
)
def create_rule(
    data: RoutingRuleWrite, session: SessionDep, user: ApiAdminDep, clock: ClockDep
) -> RoutingRuleRead:
    """Keywords are stored as lemmas: «дороги» matches «дорога», «дорогу», «дорогам»."""
    rule = service.create_rule(session, data, clock())
    session.commit()
    return service.rule_read(rule)


@router.post("/routing-rules/try", response_model=TryResult, name="api:routing_rule_try")
def post_try(data: RuleTry, session: SessionDep, user: ApiAdminDep) -> TryResult:
    """How many of the last `limit` questions the conditions would match (nothing is saved)."""
    return try_rule(session, user, data)


@router.get("/routing-rules/{rule_id}", response_model=RoutingRuleRead, name="api:routing_rule_get")
def get_rule(rule_id: int, session: SessionDep, user: ApiAdminDep) -> RoutingRuleRead:
    return service.rule_read(service.get_rule(session, rule_id))


@router.patch(
    "/routing-rules/{rule_id}", response_model=RoutingRuleRead, name="api:routing_rule_update"
)
def update_rule(
    rule_id: int,
    data: RoutingRuleUpdate,
    session: SessionDep,
    user: ApiAdminDep,
    clock: ClockDep,
) -> RoutingRuleRead:
    rule = service.update_rule(session, rule_id, data, clock())
    session.commit()
    return service.rule_read(rule)


@router.delete("/routing-rules/{rule_id}", status_code=204, name="api:routing_rule_delete")
def delete_rule(rule_id: int, session: SessionDep, user: ApiAdminDep) -> Response:
    """409 `rule_in_use` once the rule has routed a question: disable it instead."""
    service.delete_rule(session, rule_id)
    session.commit()
    return Response(status_code=204)


# --- categories -------------------------------------------------------------------


@router.get("/categories", response_model=Listing[Category], name="api:category_list")
def list_categories(session: SessionDep, user: ApiUserDep) -> Listing[Category]:
    return Listing(items=list(service.list_categories(session)))


@router.post("/categories", response_model=Category, status_code=201, name="api:category_create")
def create_category(data: CategoryWrite, session: SessionDep, user: ApiAdminDep) -> Category:
    category = service.create_category(session, data)
    session.commit()
    return category


@router.patch("/categories/{category_id}", response_model=Category, name="api:category_update")
def update_category(
    category_id: int, data: CategoryWrite, session: SessionDep, user: ApiAdminDep
) -> Category:
    category = service.update_category(session, category_id, data)
    session.commit()
    return category


# The rules' admin pages (/admin/rules) have no /api/v1 prefix: this module's router
# becomes a plain one holding both.
_api = router
router = APIRouter()
router.include_router(_api)
router.include_router(admin.router)
