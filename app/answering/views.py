"""The question page and the operator's actions in the browser.

Every action is a form with the CSRF token that works without JavaScript (303 back to
the page) and with htmx (the question's fragment, swapped in place, and an HX-Trigger).
Each calls the same service function as the JSON API. A question outside the user's
scope is a 404 page; a supervisor sees the page without action forms, and their POSTs
are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.answering import admin, forms, service
from app.answering import canned as canned_mod
from app.answering import page as page_mod
from app.answering.models import StatusChange
from app.auth.deps import WebFormUserDep, WebUserDep
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import DomainError, Invalid, NotAllowed
from app.core.web import View, ViewDep
from app.questions import queries
from app.questions.models import Question
from app.routing import service as routing_service
from app.sla import policies

router = APIRouter(include_in_schema=False)


@dataclass
class Ctx:
    """One request on one question: who asks, how to answer (page or fragment), and when."""

    request: Request
    view: View
    session: Session
    user: User
    question: Question
    now: datetime

    def acting(self) -> None:
        if not service.can_act(self.user):
            raise NotAllowed("Куратор видит вопросы только для чтения", code="read_only")

    @property
    def tz(self) -> str:
        return policies.institution_timezone(self.session, self.question.institution_id)

    def render(
        self, *, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        """The question page, or for htmx its main fragment (`#question`)."""
        p = page_mod.build(
            self.session,
            self.question,
            self.user,
            now=self.now,
            cipher=get_cipher(self.request),
        )
        fragment = self.view.wants_fragment
        context.setdefault("errors", {})
        context.setdefault("form", {})
        return self.view.render(
            "questions/_question.html" if fragment else "questions/question.html",
            status_code=status_code,
            headers=headers,
            p=p,
            now=self.now,
            **context,
        )

    def done(self, what: str) -> Response:
        """After an action: 303 back to the page without JS; with htmx, the page's fragment
        in place and an HX-Trigger for whatever else listens."""
        if self.view.is_htmx:
            self.session.refresh(self.question)
            return self.render(
                headers={"HX-Trigger": "question-changed"}, notice=forms.DONE_RU.get(what)
            )
        url = self.request.url_for("questions:detail", question_id=self.question.id)
        return RedirectResponse(f"{url}?done={what}", status_code=303)

    def refused(self, exc: DomainError, form: dict[str, Any]) -> HTMLResponse:
        """The page again with every value kept: a validation error (422) beside its field,
        a conflict (409) as a notice on top. htmx swaps 422 but no other 4xx, so a
        conflict answers an htmx request with 200."""
        self.session.rollback()
        self.session.refresh(self.question)
        if isinstance(exc, Invalid):
            field = forms.FIELD_OF.get(exc.code, "text")
            return self.render(status_code=422, errors={field: exc.message}, form=form)
        return self.render(
            status_code=200 if self.view.is_htmx else exc.status_code,
            notice=exc.message,
            notice_level="error",
            form=form,
        )

    def form_page(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("errors", {})
        return self.view.render(
            template, status_code=status_code, question=self.question, now=self.now, **context
        )


def _ctx(
    question_id: int,
    request: Request,
    session: SessionDep,
    user: WebUserDep,
    view: ViewDep,
    clock: ClockDep,
) -> Ctx:
    # Another institution's question is a 404 (never a 403 that confirms it exists).
    question = queries.get_question(session, user, question_id)
    return Ctx(request, view, session, user, question, clock())


def _action_ctx(
    question_id: int,
    request: Request,
    session: SessionDep,
    user: WebFormUserDep,
    view: ViewDep,
    clock: ClockDep,
) -> Ctx:
    ctx = _ctx(question_id, request, session, user, view, clock)
    ctx.acting()
    return ctx


PageCtx = Annotated[Ctx, Depends(_ctx)]
ActionCtx = Annotated[Ctx, Depends(_action_ctx)]


# --- the page ---------------------------------------------------------------------------------


@router.get("/questions/{question_id}", name="questions:detail", response_class=HTMLResponse)
def detail(ctx: PageCtx, canned: int | None = None, done: str = "") -> HTMLResponse:
    form: dict[str, Any] = {}
    if canned is not None and service.can_act(ctx.user):
        # A canned response picked without JavaScript: the page comes back with it filled in.
        template = canned_mod.get_canned(ctx.session, ctx.user, canned)
        form["text"] = canned_mod.render(ctx.session, template, ctx.question, None)
        form["canned"] = canned
    return ctx.render(form=form, notice=forms.DONE_RU.get(done))


@router.get("/questions/{question_id}/thread", name="questions:thread", response_class=HTMLResponse)
def thread(ctx: PageCtx) -> HTMLResponse:
    """The conversation, polled while a reply is being published; out of band, the tags,
    the SLA panel and the timeline (a published reply changes them all)."""
    p = page_mod.build(
        ctx.session, ctx.question, ctx.user, now=ctx.now, cipher=get_cipher(ctx.request)
    )
    return ctx.view.render("questions/_thread_poll.html", p=p, now=ctx.now)


@router.get("/questions/{question_id}/canned", name="questions:canned", response_class=HTMLResponse)
def canned_text(ctx: PageCtx, canned: int, text: str = "", expected_date: str = "") -> Response:
    """The reply's text box with a canned response added to the draft, its variables
    filled in for this question (htmx); without JS, the page with it filled in."""
    ctx.acting()
    if not ctx.view.is_htmx:
        url = ctx.request.url_for("questions:detail", question_id=ctx.question.id)
        return RedirectResponse(f"{url}?canned={canned}#reply", status_code=303)
    template = canned_mod.get_canned(ctx.session, ctx.user, canned)
    try:
        expected = forms.expected_at(expected_date, ctx.tz)
    except Invalid:
        expected = None
    filled = canned_mod.render(ctx.session, template, ctx.question, expected)
    draft = text.rstrip()
    return ctx.view.render(
        "questions/_reply_text.html",
        form={"text": f"{draft}\n\n{filled}" if draft else filled},
        errors={},
    )


# --- replies ----------------------------------------------------------------------------------


@router.post("/questions/{question_id}/reply", name="questions:reply", response_class=HTMLResponse)
def reply(
    ctx: ActionCtx,
    text: Annotated[str, Form()] = "",
    interim: Annotated[str, Form()] = "",
    expected_date: Annotated[str, Form()] = "",
    seen_response_id: Annotated[int | None, Form()] = None,
    force: Annotated[str, Form()] = "",
) -> Response:
    form: dict[str, Any] = {"text": text, "interim": bool(interim), "expected_date": expected_date}
    try:
        service.reply(
            ctx.session,
            ctx.question,
            text=text,
            interim=bool(interim),
            expected_at=forms.expected_at(expected_date, ctx.tz) if interim else None,
            by=ctx.user,
            now=ctx.now,
            cipher=get_cipher(ctx.request),
            seen_response_id=None if force else seen_response_id,
        )
    except service.AnsweredMeanwhile as exc:
        # The draft stays; the operator reads the answer and may send theirs anyway.
        form["answered_meanwhile"] = True
        return ctx.refused(exc, form)
    except DomainError as exc:
        return ctx.refused(exc, form)
    ctx.session.commit()
    return ctx.done("reply")


@router.post(
    "/questions/{question_id}/outbox/{item_id}/retry",
    name="questions:retry",
    response_class=HTMLResponse,
)
def retry(ctx: ActionCtx, item_id: int) -> Response:
    try:
        service.retry(ctx.session, ctx.question, item_id, now=ctx.now)
    except DomainError as exc:
        return ctx.refused(exc, {})
    ctx.session.commit()
    return ctx.done("retry")


# --- assignment, notes, status, classification -----------------------------------------------


@router.post("/questions/{question_id}/claim", name="questions:claim")
@router.post("/questions/{question_id}/release", name="questions:release")
@router.post("/questions/{question_id}/assign", name="questions:assign")
@router.post("/questions/{question_id}/notes", name="questions:note")
@router.post("/questions/{question_id}/status", name="questions:status")
@router.post("/questions/{question_id}/reclassify", name="questions:reclassify")
def action(
    ctx: ActionCtx,
    user_id: Annotated[str, Form()] = "",
    note_text: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    classification: Annotated[str, Form()] = "",
) -> Response:
    """The small actions of the page's side panel, one service call each."""
    session, question, by, now = ctx.session, ctx.question, ctx.user, ctx.now
    what = ctx.request.url.path.rstrip("/").rsplit("/", 1)[-1]
    form = {"note_text": note_text, "user_id": user_id, "classification": classification}
    try:
        if what == "claim":
            service.claim(session, question, by=by, now=now)
        elif what == "release":
            service.release(session, question, by=by, now=now)
        elif what == "assign":
            assignee = int(user_id) if user_id.strip().isdigit() else None
            service.assign(session, question, user_id=assignee, by=by, now=now)
        elif what == "notes":
            service.add_note(session, question, text=note_text, by=by, now=now)
            what = "note"
        elif what == "status":
            if status not in StatusChange.__members__:
                raise Invalid("Выберите, что сделать с вопросом", code="invalid_status")
            service.set_status(session, question, StatusChange(status), by=by, now=now)
        else:
            routing_service.reclassify(
                session, question, classification=classification, by=by, now=now
            )
    except DomainError as exc:
        return ctx.refused(exc, form)
    session.commit()
    return ctx.done(what)


# --- transfer and dismissal: pages of their own (ui.md §4) -------------------------------------


@router.get(
    "/questions/{question_id}/transfer", name="questions:transfer", response_class=HTMLResponse
)
def transfer_form(ctx: PageCtx, q: str = "") -> HTMLResponse:
    ctx.acting()
    choices = forms.transfer_choices(ctx.session, ctx.question, q=q[:200], chosen=None)
    return ctx.form_page("questions/transfer.html", reason="", **choices)


@router.post("/questions/{question_id}/transfer", response_class=HTMLResponse)
def transfer(
    ctx: ActionCtx,
    institution_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
) -> Response:
    chosen = int(institution_id) if institution_id.strip().isdigit() else None
    errors: dict[str, str] = {}
    # Both missing answers are named at once (GOV.UK); the service checks them again.
    if chosen is None:
        errors["institution_id"] = "Выберите учреждение, которому передаёте вопрос"
    if not reason.strip():
        errors["reason"] = "Укажите причину передачи"
    if chosen is not None and not errors:
        try:
            routing_service.transfer(
                ctx.session,
                ctx.question,
                institution_id=chosen,
                reason=reason,
                by=ctx.user,
                now=ctx.now,
            )
        except DomainError as exc:
            ctx.session.rollback()
            errors[forms.FIELD_OF.get(exc.code, "institution_id")] = exc.message
    if errors:
        choices = forms.transfer_choices(ctx.session, ctx.question, q=q[:200], chosen=chosen)
        return ctx.form_page(
            "questions/transfer.html", status_code=422, reason=reason, errors=errors, **choices
        )
    ctx.session.commit()
    # The question may have left the user's queues: back to the queue, not to a 404.
    try:
        queries.get_question(ctx.session, ctx.user, ctx.question.id or 0)
        target = f"/questions/{ctx.question.id}?done=transfer"
    except DomainError:
        target = f"/inbox?transferred={ctx.question.id}"
    if ctx.view.is_htmx:
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.get(
    "/questions/{question_id}/dismiss", name="questions:dismiss", response_class=HTMLResponse
)
def dismiss_form(ctx: PageCtx) -> HTMLResponse:
    ctx.acting()
    return ctx.form_page(
        "questions/dismiss.html", choices=page_mod.DISMISS_CHOICES, reason="", note=""
    )


@router.post("/questions/{question_id}/dismiss", response_class=HTMLResponse)
def dismiss(
    ctx: ActionCtx,
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    if reason not in {code for code, _, _ in page_mod.DISMISS_CHOICES}:
        errors["reason"] = "Выберите, почему отвечать не нужно"
    else:
        try:
            routing_service.dismiss(
                ctx.session, ctx.question, reason=reason, note=note, by=ctx.user, now=ctx.now
            )
        except DomainError as exc:
            ctx.session.rollback()
            errors[forms.FIELD_OF.get(exc.code, "reason")] = (
                "Опишите причину в комментарии" if exc.code == "note_required" else exc.message
            )
    if errors:
        return ctx.form_page(
            "questions/dismiss.html",
            status_code=422,
            choices=page_mod.DISMISS_CHOICES,
            reason=reason,
            note=note,
            errors=errors,
        )
    ctx.session.commit()
    return ctx.done("dismiss")


router.include_router(admin.router)  # /admin/categories, /admin/canned
