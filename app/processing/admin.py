"""Administrators' pages of processing: a page's connection health (with «send a test
event») and failed deliveries (the error, the raw body, replay one or all).

Replays go through the same functions as the JSON API (`app.processing.api`), and
each is written to the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.core.clock import ClockDep
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.web import View, ViewDep
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake.models import EventStatus, InboundEvent
from app.processing import api as events_api
from app.processing import page_health
from app.processing.processor import process_one
from webhooks import PermanentError, TransientError, get_adapter
from webhooks.setup import REPLY_SAMPLES, explain, get_setup

router = APIRouter(include_in_schema=False)

PLATFORM_RU = {
    "vk": "ВКонтакте",
    "telegram": "Telegram",
    "ok": "Одноклассники",
    "max": "MAX",
    "generic": "Источник",
}
STATUS_RU = {
    EventStatus.pending: "ждёт обработки",
    EventStatus.processed: "обработано",
    EventStatus.ignored: "обработано (служебное, вопрос не создаётся)",
    EventStatus.failed: "ошибка обработки",
    EventStatus.waiting: "ждёт своё сообщение",
    EventStatus.orphaned: "осталось без сообщения",
}
PAGE_SIZE = 20


def _page_or_404(session: Session, page_id: int) -> Page:
    page = directory_service.get_page(session, page_id)
    if page is None:
        raise NotFound("Страница не найдена")
    return page


# --- connection health ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyAbility:
    label: str
    problem: str | None


def _health(
    request: Request,
    view: View,
    session: Session,
    page: Page,
    base_url: str,
    now: Any,
    test: InboundEvent | None = None,
    test_problem: str | None = None,
) -> HTMLResponse:
    assert page.id is not None
    state = request.app.state
    settings = state.settings
    secrets_ = directory_service.page_secrets(
        page, get_cipher(request), settings.api_url(page.platform)
    )
    webhook_url = directory_service.webhook_url(base_url, page)
    platform_status = platform_problem = None
    setup = get_setup(page.platform)
    if setup is not None and page.is_active:
        try:
            platform_status = setup.status(state.http, secrets_, webhook_url)
        except (PermanentError, TransientError) as error:
            platform_problem = explain(error, PLATFORM_RU.get(page.platform, page.platform))
    adapter = get_adapter(page.platform)
    replies = [
        ReplyAbility(label, adapter.can_reply(secrets_, ref))
        for label, ref in REPLY_SAMPLES.get(page.platform, ())
    ]
    context = {
        "page": page,
        "figures": page_health.delivery_figures(session, page.id, now),
        "platform_status": platform_status,
        "platform_problem": platform_problem,
        "platform_ru": PLATFORM_RU.get(page.platform, page.platform),
        "replies": replies,
        "test": test,
        "test_status": STATUS_RU.get(test.status) if test else None,
        "test_problem": test_problem,
        "now": now,
    }
    template = "admin/pages/_health.html" if view.wants_fragment else "admin/pages/health.html"
    return view.render(template, **context)


@router.get("/admin/pages/{page_id}/health", response_class=HTMLResponse, name="admin:page_health")
def health(
    page_id: int,
    request: Request,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminDep,
    settings: SettingsDep,
    clock: ClockDep,
    test: int | None = None,
) -> HTMLResponse:
    """The page's connection health: what arrived, what failed, the platform's own view
    of the webhook, whether replies can be published; a fragment for htmx."""
    page = _page_or_404(session, page_id)
    shown = None
    if test is not None:
        shown = session.get(InboundEvent, test)
        if shown is None or shown.page_id != page.id:
            shown = None
    return _health(request, view, session, page, settings.base_url, clock(), shown)


@router.post("/admin/pages/{page_id}/test-event", name="admin:page_test_event")
def test_event(
    page_id: int,
    request: Request,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminFormDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Send the page a test delivery through the receiver's checks, store it, process it
    now and show what became of it."""
    page = _page_or_404(session, page_id)
    now = clock()
    state = request.app.state
    try:
        event_id = page_health.store_test_delivery(session, page, get_cipher(request), now)
    except page_health.TestRefused as refused:
        session.rollback()
        return _health(
            request, view, session, page, settings.base_url, now, None, refused.message_ru
        )
    audit.record(
        session,
        actor=user,
        action="page.test_event",
        object_type="page",
        object_id=page_id,
        after={"delivery_id": event_id},
        address=client_address(request),
        summary=f"Тестовое событие для «{page.name}»",
    )
    session.commit()
    process_one(state.engine, event_id, state.cipher, state.clock)
    if not view.is_htmx:
        return RedirectResponse(f"/admin/pages/{page_id}/health?test={event_id}", status_code=303)
    session.expire_all()
    event = session.get(InboundEvent, event_id)
    return _health(request, view, session, page, settings.base_url, now, event)


# --- failed deliveries ---------------------------------------------------------------------


def pretty_body(event: InboundEvent) -> str:
    """The raw body, indented when it is JSON; VK's `secret` masked (bodies stored before
    intake stopped keeping it still carry it). Escaped by the template, never marked safe."""
    text = event.body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text[:20000]
    if isinstance(data, dict) and "secret" in data:
        data["secret"] = audit.MASK
    return json.dumps(data, ensure_ascii=False, indent=2)[:20000]


def error_ru(error: str | None) -> str:
    """What went wrong, led by a Russian sentence an administrator can act on; the
    technical detail (the adapter's or the exception's words) follows as it was."""
    if not error:
        return "Причина не записана."
    if error.startswith("Malformed: "):
        return (
            "Тело запроса не удалось прочитать — повтор не поможет, пока платформа не "
            f"пришлёт иное. Подробности: {error.removeprefix('Malformed: ')}"
        )
    if error.startswith("LookupError: page"):
        return f"Страница удалена из справочника. Подробности: {error}"
    return f"Ошибка при обработке; Отклик повторит её сам. Подробности: {error}"


def _failed_rows(session: Session, page_id: int | None, after_id: int) -> list[InboundEvent]:
    query = select(InboundEvent).where(
        col(InboundEvent.status).in_([EventStatus.failed, EventStatus.orphaned]),
        col(InboundEvent.id) > after_id,
    )
    if page_id is not None:
        query = query.where(InboundEvent.page_id == page_id)
    return list(session.exec(query.order_by(col(InboundEvent.id)).limit(PAGE_SIZE + 1)).all())


def _failed_page(
    view: View,
    session: Session,
    *,
    page_id: int | None,
    after: int,
    done: str = "",
) -> HTMLResponse:
    rows = _failed_rows(session, page_id, after)
    shown = rows[:PAGE_SIZE]
    page_ids = {e.page_id for e in shown}
    pages = (
        {p.id: p for p in session.exec(select(Page).where(col(Page.id).in_(page_ids))).all()}
        if page_ids
        else {}
    )
    total = len(events_api.failed_events(session, 0, 1000))
    return view.render(
        "admin/failed.html",
        events=shown,
        pages=pages,
        bodies={e.id: pretty_body(e) for e in shown},
        status_ru=STATUS_RU,
        platform_ru=PLATFORM_RU,
        error_ru=error_ru,
        next_after=shown[-1].id if len(rows) > PAGE_SIZE else None,
        page_id=page_id,
        total=total,
        done=done,
    )


@router.get("/admin/failed", response_class=HTMLResponse, name="admin:failed")
def failed(
    session: SessionDep,
    view: ViewDep,
    user: WebAdminDep,
    page_id: int | None = None,
    after: int = 0,
    done: str = "",
) -> HTMLResponse:
    """Deliveries whose processing failed (or whose message never came), oldest first."""
    return _failed_page(view, session, page_id=page_id, after=after, done=_done_text(done))


def _done_text(done: str) -> str:
    kind, _, figures = done.partition(":")
    if kind == "one" and figures:
        return (
            f"Событие обработано повторно: {STATUS_RU.get(EventStatus(figures), figures)}."
            if figures in set(EventStatus)
            else ""
        )
    if kind == "all" and figures:
        replayed, _, processed = figures.partition("/")
        return f"Повторено событий: {replayed}, обработано успешно: {processed}."
    return ""


@router.get("/admin/failed/{event_id}", response_class=HTMLResponse, name="admin:failed_event")
def failed_event(
    event_id: int, session: SessionDep, view: ViewDep, user: WebAdminDep, done: str = ""
) -> HTMLResponse:
    """One stored delivery: its error and raw body (any status)."""
    event = session.get(InboundEvent, event_id)
    if event is None:
        raise NotFound("Событие не найдено")
    return view.render(
        "admin/failed_event.html",
        event=event,
        page=session.get(Page, event.page_id),
        body=pretty_body(event),
        error_ru=error_ru,
        status_ru=STATUS_RU,
        platform_ru=PLATFORM_RU,
        done=_done_text(done),
    )


@router.post("/admin/failed/{event_id}/replay", name="admin:failed_replay")
def replay_one(
    event_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    back: Annotated[str, Form()] = "",
) -> Response:
    """Process one stored delivery again (the API's replay), then back to the list."""
    stored = session.get(InboundEvent, event_id)
    if stored is None:
        raise NotFound("Событие не найдено")
    before = events_api.replay_state(stored)
    session.rollback()  # release the read before the replay writes
    event = events_api.replay(request, event_id)
    events_api.record_replay(session, user, client_address(request), event, before)
    session.commit()
    status = str(event.status)
    target = f"/admin/failed/{event_id}" if back == "event" else "/admin/failed"
    return RedirectResponse(f"{target}?done=one:{status}", status_code=303)


@router.post("/admin/failed/replay", name="admin:failed_replay_all")
def replay_all(request: Request, session: SessionDep, user: WebAdminFormDep) -> Response:
    """Replay every failed delivery (up to 1,000), like the API's replay-failed."""
    ids = [e.id for e in events_api.failed_events(session, 0, 1000) if e.id is not None]
    befores = {e.id: events_api.replay_state(e) for e in events_api.failed_events(session, 0, 1000)}
    session.rollback()
    processed = 0
    for event_id in ids:
        event = events_api.replay(request, event_id)
        if event.status in (EventStatus.processed, EventStatus.ignored):
            processed += 1
        events_api.record_replay(
            session, user, client_address(request), event, befores.get(event_id, {})
        )
    session.commit()
    return RedirectResponse(f"/admin/failed?done=all:{len(ids)}/{processed}", status_code=303)
