"""Routing rules in the browser: the ordered list («Выше»/«Ниже», on/off), a rule's form,
and the "would have matched" preview on recent questions before saving.

Changes go through `app.routing.service` (as the JSON API's) and the preview through
`app.routing.trial.try_rule` (the API's `try`); each change is in the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import audit
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.clock import Clock, ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.routing import rules as rules_mod
from app.routing import service
from app.routing.models import RoutingRule
from app.routing.rule_form import (
    CLASSIFICATIONS_RU,
    RULE_FIELDS,
    RuleForm,
    RuleFormDep,
    choices,
    describe,
    form_errors,
    int_or_none,
)
from app.routing.service import RoutingRuleUpdate
from app.routing.trial import RuleTry, TryResult, try_rule

router = APIRouter(include_in_schema=False)


def _list_page(view: View, session: Session, done: str = "") -> HTMLResponse:
    rules = service.list_rules(session)
    return view.render(
        "admin/rules.html" if not view.wants_fragment else "admin/rules_list.html",
        rules=rules,
        described={r.id: describe(session, r) for r in rules},
        done={
            "saved": "Правило сохранено.",
            "moved": "Порядок изменён.",
            "on": "Правило включено.",
            "off": "Правило выключено.",
        }.get(done, ""),
    )


@router.get("/admin/rules", response_class=HTMLResponse, name="admin:rules")
def rules_page(
    session: SessionDep, user: WebAdminDep, view: ViewDep, done: str = ""
) -> HTMLResponse:
    """The rules in the order they are tried; the first that matches wins."""
    return _list_page(view, session, done)


def _form_page(
    view: View,
    session: Session,
    *,
    rule: RoutingRule | None,
    form: RuleForm,
    errors: dict[str, str] | None = None,
    result: TryResult | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return view.render(
        "admin/rules_form.html",
        status_code=status_code,
        rule=rule,
        form=form,
        errors=errors or {},
        result=result,
        classification_names=CLASSIFICATIONS_RU,
        **choices(session),
    )


def _try(session: Session, user: User, rule: RoutingRule | None, form: RuleForm) -> TryResult:
    conditions = rules_mod.RuleConditions.model_validate(form.conditions())
    return try_rule(
        session,
        user,
        RuleTry(
            conditions=conditions,
            rule_id=rule.id if rule else None,
            position=rule.position if rule else None,
            limit=1000,
        ),
    )


@router.get("/admin/rules/new", response_class=HTMLResponse, name="admin:rule_new")
def rule_new(session: SessionDep, user: WebAdminDep, view: ViewDep) -> HTMLResponse:
    return _form_page(view, session, rule=None, form=RuleForm.of(None))


@router.get("/admin/rules/{rule_id}", response_class=HTMLResponse, name="admin:rule")
def rule_form(rule_id: int, session: SessionDep, user: WebAdminDep, view: ViewDep) -> HTMLResponse:
    rule = _rule_or_404(session, rule_id)
    return _form_page(view, session, rule=rule, form=RuleForm.of(rule))


def _rule_or_404(session: Session, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("Страница не найдена")
    return rule


@router.post("/admin/rules/try", response_class=HTMLResponse, name="admin:rule_try")
def rule_try(
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    form: RuleFormDep,
    rule_id: Annotated[str, Form()] = "",
) -> Response:
    """The preview alone (htmx swaps it under the form): how many recent questions the
    conditions would match, with examples; nothing is saved."""
    rule = _rule_or_404(session, int_or_none(rule_id) or 0) if int_or_none(rule_id) else None
    try:
        result = _try(session, user, rule, form)
    except ValidationError as exc:
        return view.render(
            "admin/rules_try.html",
            status_code=422,
            result=None,
            errors=form_errors(exc),
            classification_names=CLASSIFICATIONS_RU,
        )
    return view.render(
        "admin/rules_try.html", result=result, errors={}, classification_names=CLASSIFICATIONS_RU
    )


def _save_or_try(
    request: Request,
    session: Session,
    user: User,
    view: View,
    clock: Clock,
    rule: RoutingRule | None,
    form: RuleForm,
    action: str,
) -> Response:
    if action == "try":
        try:
            result = _try(session, user, rule, form)
        except ValidationError as exc:
            return _form_page(
                view, session, rule=rule, form=form, errors=form_errors(exc), status_code=422
            )
        return _form_page(view, session, rule=rule, form=form, result=result)
    payload = {"name": form.name, "conditions": form.conditions(), "actions": form.actions()}
    before = audit.snapshot(rule, RULE_FIELDS) if rule else None
    try:
        if rule is None:
            data = rules_mod.RoutingRuleWrite.model_validate(payload)
            saved = service.create_rule(session, data, clock())
        else:
            update = RoutingRuleUpdate.model_validate(payload)
            saved = service.update_rule(session, rule.id or 0, update, clock())
    except ValidationError as exc:
        return _form_page(
            view, session, rule=rule, form=form, errors=form_errors(exc), status_code=422
        )
    except DomainError as exc:
        session.rollback()
        rule = _rule_or_404(session, rule.id or 0) if rule else None
        field = "actions" if exc.code == "rule_no_action" else "conditions"
        message = (
            "Выберите, что делать с вопросом: передать, назначить категорию, отметить срочным или снять"
            if exc.code == "rule_no_action"
            else exc.message
        )
        return _form_page(
            view, session, rule=rule, form=form, errors={field: message}, status_code=422
        )
    audit.record(
        session,
        actor=user,
        action="rule.create" if rule is None else "rule.update",
        object_type="routing_rule",
        object_id=saved.id,
        before=before,
        after=audit.snapshot(saved, RULE_FIELDS),
        address=client_address(request),
        summary=f"Правило «{saved.name}»",
    )
    session.commit()
    if view.is_htmx:
        return Response(status_code=204, headers={"HX-Redirect": "/admin/rules?done=saved"})
    return RedirectResponse("/admin/rules?done=saved", status_code=303)


@router.post("/admin/rules/new", name="admin:rule_create")
def rule_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    form: RuleFormDep,
    action: Annotated[str, Form()] = "save",
) -> Response:
    """«Проверить» shows the preview with the form kept; «Сохранить» adds the rule at the end."""
    return _save_or_try(request, session, user, view, clock, None, form, action)


@router.post("/admin/rules/{rule_id}", name="admin:rule_save")
def rule_save(
    rule_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    form: RuleFormDep,
    action: Annotated[str, Form()] = "save",
) -> Response:
    rule = _rule_or_404(session, rule_id)
    return _save_or_try(request, session, user, view, clock, rule, form, action)


def _done(view: View, session: Session, done: str) -> Response:
    if view.is_htmx:
        return _list_page(view, session, done)
    return RedirectResponse(f"/admin/rules?done={done}", status_code=303)


@router.post("/admin/rules/{rule_id}/move", name="admin:rule_move")
def rule_move(
    rule_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    direction: Annotated[str, Form()] = "up",
) -> Response:
    """Swap a rule with its neighbour; positions become 10, 20, 30… in the new order."""
    rule = _rule_or_404(session, rule_id)
    ordered = list(service.list_rules(session))
    index = ordered.index(rule)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ordered):
        before = [r.id for r in ordered]
        ordered[index], ordered[other] = ordered[other], ordered[index]
        now = clock()
        for number, item in enumerate(ordered, start=1):
            if item.position != number * 10:
                service.update_rule(
                    session, item.id or 0, RoutingRuleUpdate(position=number * 10), now
                )
        audit.record(
            session,
            actor=user,
            action="rule.reorder",
            object_type="routing_rule",
            object_id=rule_id,
            before={"order": before},
            after={"order": [r.id for r in ordered]},
            address=client_address(request),
            summary=f"Правило «{rule.name}» {'выше' if direction == 'up' else 'ниже'}",
        )
        session.commit()
    return _done(view, session, "moved")


@router.post("/admin/rules/{rule_id}/toggle", name="admin:rule_toggle")
def rule_toggle(
    rule_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
) -> Response:
    rule = _rule_or_404(session, rule_id)
    enabled = not rule.enabled
    service.update_rule(session, rule_id, RoutingRuleUpdate(enabled=enabled), clock())
    audit.record(
        session,
        actor=user,
        action="rule.enable" if enabled else "rule.disable",
        object_type="routing_rule",
        object_id=rule_id,
        before={"enabled": not enabled},
        after={"enabled": enabled},
        address=client_address(request),
        summary=f"Правило «{rule.name}»",
    )
    session.commit()
    return _done(view, session, "on" if enabled else "off")
