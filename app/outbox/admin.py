"""Outgoing webhook subscriptions in the browser (/admin/subscriptions): list with the
last deliveries' status, create (the signing secret shown once), edit, pause, delete,
«send test». The same service functions as the JSON API (`app.outbox.api`); every
change is written to the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import audit
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.crypto import CipherDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.web import View, ViewDep
from app.outbox import subscriptions
from app.outbox.models import SubscriptionCreate, SubscriptionUpdate
from app.questions.models import OutboxStatus, WebhookSubscription
from app.questions.outgoing import EVENTS

router = APIRouter(include_in_schema=False)

EVENTS_RU = {
    "question.created": "Новый вопрос",
    "question.answered": "Вопрос отвечен",
    "question.transferred": "Вопрос передан другому учреждению",
    "sla.warning": "Скоро срок ответа",
    "sla.breached": "Срок ответа нарушен",
    subscriptions.TEST_EVENT: "Проверка",
}
DELIVERY_RU = {
    OutboxStatus.pending: "в очереди",
    OutboxStatus.sending: "отправляется",
    OutboxStatus.sent: "доставлено",
    OutboxStatus.failed: "не доставлено",
    OutboxStatus.cancelled: "отменено",
}
DONE = {
    "saved": "Подписка сохранена.",
    "deleted": "Подписка удалена; события, ждавшие отправки, отменены.",
    "test": "Проверочное событие поставлено в очередь: его судьба — в списке доставок.",
}
AUDIT_FIELDS = ("url", "events", "is_active")


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "url"
        if field == "url":
            errors["url"] = "Укажите адрес, начинающийся с https:// (или http://), без пробелов"
        elif field == "events":
            errors["events"] = "Отметьте хотя бы одно событие"
    return errors or {"url": "Проверьте адрес и события"}


def _listing(
    view: View,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    created: WebhookSubscription | None = None,
    secret: str | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    rows = list(subscriptions.list_all(session, after_id=0, limit=200))
    ids = [s.id for s in rows if s.id is not None]
    return view.render(
        "admin/subscriptions.html",
        status_code=status_code,
        # The signing secret is on the page once: not kept by the browser or a proxy.
        headers={"Cache-Control": "no-store"} if secret else None,
        subscriptions=rows,
        deliveries=subscriptions.recent_deliveries(session, ids),
        events=EVENTS,
        events_ru=EVENTS_RU,
        delivery_ru=DELIVERY_RU,
        form=form or {"url": "", "events": list(EVENTS)},
        errors=errors or {},
        created=created,
        secret=secret,
        done=DONE.get(done, ""),
    )


@router.get("/admin/subscriptions", response_class=HTMLResponse, name="admin:subscriptions")
def listing(session: SessionDep, view: ViewDep, user: WebAdminDep, done: str = "") -> HTMLResponse:
    return _listing(view, session, done=done)


@router.post("/admin/subscriptions", response_class=HTMLResponse, name="admin:subscription_create")
def create(
    request: Request,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminFormDep,
    cipher: CipherDep,
    clock: ClockDep,
    settings: SettingsDep,
    url: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """Subscribe a URL; the page shows the signing secret this once."""
    form = {"url": url, "events": events or []}
    try:
        data = SubscriptionCreate(url=url.strip(), events=events or [])
        subscription, secret = subscriptions.create(
            session,
            data,
            cipher,
            now=clock(),
            allow_private=settings.outgoing_webhooks_allow_private,
        )
    except ValidationError as exc:
        return _listing(view, session, form=form, errors=_errors(exc), status_code=422)
    except Invalid as exc:
        session.rollback()
        field = "events" if exc.code == "unknown_event" else "url"
        return _listing(view, session, form=form, errors={field: exc.message}, status_code=422)
    _record(session, user, request, "subscription.create", subscription, None)
    session.commit()
    return _listing(view, session, created=subscription, secret=secret)


def record_change(
    session: Session,
    user: User,
    address: str | None,
    action: str,
    subscription: WebhookSubscription,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None = None,
) -> None:
    """The audit entry of a change to a subscription (pages and API alike)."""
    audit.record(
        session,
        actor=user,
        action=action,
        object_type="subscription",
        object_id=subscription.id,
        before=before,
        after=after if after is not None else audit.snapshot(subscription, AUDIT_FIELDS),
        address=address,
        summary=f"Подписка на события: {subscription.url}",
    )


def _record(
    session: Session,
    user: User,
    request: Request,
    action: str,
    subscription: WebhookSubscription,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None = None,
) -> None:
    record_change(session, user, client_address(request), action, subscription, before, after)


def _edit_page(
    view: View,
    session: Session,
    subscription: WebhookSubscription,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    done: str = "",
) -> HTMLResponse:
    assert subscription.id is not None
    return view.render(
        "admin/subscription.html",
        status_code=status_code,
        subscription=subscription,
        deliveries=subscriptions.recent_deliveries(session, [subscription.id], per_subscription=20)[
            subscription.id
        ],
        events=EVENTS,
        events_ru=EVENTS_RU,
        delivery_ru=DELIVERY_RU,
        form=form,
        errors=errors,
        done=DONE.get(done, ""),
    )


def _form_of(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "url": subscription.url,
        "events": list(subscription.events),
        "is_active": subscription.is_active,
    }


@router.get(
    "/admin/subscriptions/{subscription_id}",
    response_class=HTMLResponse,
    name="admin:subscription",
)
def edit(
    subscription_id: int, session: SessionDep, view: ViewDep, user: WebAdminDep, done: str = ""
) -> HTMLResponse:
    subscription = subscriptions.get(session, subscription_id)
    return _edit_page(view, session, subscription, _form_of(subscription), {}, done=done)


@router.post("/admin/subscriptions/{subscription_id}", name="admin:subscription_save")
def save(
    subscription_id: int,
    request: Request,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminFormDep,
    settings: SettingsDep,
    url: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
    is_active: Annotated[str, Form()] = "",
) -> Response:
    subscription = subscriptions.get(session, subscription_id)
    before = audit.snapshot(subscription, AUDIT_FIELDS)
    form = {"url": url, "events": events or [], "is_active": is_active == "1"}
    try:
        data = SubscriptionUpdate(url=url.strip(), events=events or [], is_active=is_active == "1")
        subscriptions.update(
            session,
            subscription_id,
            data,
            allow_private=settings.outgoing_webhooks_allow_private,
        )
    except ValidationError as exc:
        return _edit_page(view, session, subscription, form, _errors(exc), status_code=422)
    except Invalid as exc:
        session.rollback()
        subscription = subscriptions.get(session, subscription_id)
        field = "events" if exc.code == "unknown_event" else "url"
        return _edit_page(view, session, subscription, form, {field: exc.message}, 422)
    _record(session, user, request, "subscription.update", subscription, before)
    session.commit()
    return RedirectResponse(f"/admin/subscriptions/{subscription_id}?done=saved", status_code=303)


@router.post("/admin/subscriptions/{subscription_id}/delete", name="admin:subscription_delete")
def delete(
    subscription_id: int, request: Request, session: SessionDep, user: WebAdminFormDep
) -> Response:
    """Remove the subscription; deliveries still waiting are cancelled."""
    subscription = subscriptions.get(session, subscription_id)
    before = audit.snapshot(subscription, AUDIT_FIELDS)
    _record(session, user, request, "subscription.delete", subscription, before, {})
    subscriptions.delete(session, subscription_id)
    session.commit()
    return RedirectResponse("/admin/subscriptions?done=deleted", status_code=303)


@router.post("/admin/subscriptions/{subscription_id}/test", name="admin:subscription_test")
def send_test(
    subscription_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    clock: ClockDep,
) -> Response:
    """Queue a signed `test` event for this subscription (the outbox delivers it)."""
    subscription = subscriptions.get(session, subscription_id)
    item = subscriptions.send_test(session, subscription_id, now=clock())
    _record(
        session,
        user,
        request,
        "subscription.test",
        subscription,
        None,
        {"delivery_id": item.id},
    )
    session.commit()
    return RedirectResponse(f"/admin/subscriptions/{subscription_id}?done=test", status_code=303)
