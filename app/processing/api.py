"""Failed deliveries for administrators: list them, replay one or all."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import Session, col, select

from app.auth import audit
from app.auth.deps import ApiAdminDep, client_address
from app.auth.models import User
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.json_api import ERROR_RESPONSES, Listing, clamp_limit, encode_cursor, id_cursor
from app.intake.models import EventStatus, InboundEvent
from app.processing.processor import process_one
from webhooks import vk_stored

router = APIRouter(prefix="/api/v1", tags=["events"], responses=ERROR_RESPONSES)


class EventRead(BaseModel):
    id: int
    platform: str
    page_id: int
    delivery_key: str
    status: str
    attempts: int
    received_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    event_types: str
    body: str


def _read(event: InboundEvent) -> EventRead:
    return EventRead(
        id=event.id or 0,
        platform=event.platform,
        page_id=event.page_id,
        delivery_key=event.delivery_key,
        status=event.status,
        attempts=event.attempts,
        received_at=event.received_at,
        next_attempt_at=event.next_attempt_at,
        last_error=event.last_error,
        event_types=event.event_types,
        # Stored VK bodies have their secret masked already; rows stored before that
        # are masked here too.
        body=(vk_stored.mask_secret(event.body) if event.platform == "vk" else event.body).decode(
            "utf-8", errors="replace"
        )[:20000],
    )


def failed_events(session: Session, after_id: int, limit: int) -> list[InboundEvent]:
    return list(
        session.exec(
            select(InboundEvent)
            .where(
                # An orphan (its message never came) needs an administrator as much.
                col(InboundEvent.status).in_([EventStatus.failed, EventStatus.orphaned]),
                col(InboundEvent.id) > after_id,
            )
            .order_by(col(InboundEvent.id))
            .limit(limit)
        ).all()
    )


def replay(request: Request, event_id: int) -> InboundEvent:
    """Process a stored delivery again now; processing is idempotent."""
    state = request.app.state
    process_one(state.engine, event_id, state.cipher, state.clock)
    with Session(state.engine, expire_on_commit=False) as session:
        event = session.get(InboundEvent, event_id)
        if event is None:
            raise NotFound("Событие не найдено")
        return event


def replay_state(event: InboundEvent) -> dict[str, object]:
    """What a replay changes of a delivery, for the audit log."""
    return {"status": str(event.status), "attempts": event.attempts}


def record_replay(
    session: Session,
    user: User,
    address: str | None,
    event: InboundEvent,
    before: dict[str, object],
) -> None:
    """The audit entry of a replay (pages and API alike): status and attempts before →
    after."""
    audit.record(
        session,
        actor=user,
        action="delivery.replay",
        object_type="delivery",
        object_id=event.id,
        before=before,
        after=replay_state(event),
        address=address,
        summary=f"Повторная обработка события №{event.id}",
    )


@router.get("/events/failed", response_model=Listing[EventRead], name="api:events_failed")
def list_failed(
    session: SessionDep, user: ApiAdminDep, limit: int | None = None, cursor: str | None = None
) -> Listing[EventRead]:
    """Deliveries whose processing failed, with the error and the raw body, oldest first."""
    size = clamp_limit(limit)
    rows = failed_events(session, id_cursor(cursor), size + 1)
    items = [_read(e) for e in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.post("/events/{event_id}/replay", response_model=EventRead, name="api:event_replay")
def replay_one(
    event_id: int, request: Request, session: SessionDep, user: ApiAdminDep
) -> EventRead:
    """Process one stored delivery again (any status); answers with its new status."""
    stored = session.get(InboundEvent, event_id)
    if stored is None:
        raise NotFound("Событие не найдено")
    before = replay_state(stored)
    session.rollback()  # release the read before the replay writes
    event = replay(request, event_id)
    record_replay(session, user, client_address(request), event, before)
    session.commit()
    return _read(event)


class ReplayResult(BaseModel):
    replayed: int
    processed: int
    failed: int


@router.post("/events/replay-failed", response_model=ReplayResult, name="api:events_replay_failed")
def replay_failed(request: Request, session: SessionDep, user: ApiAdminDep) -> ReplayResult:
    """Replay every failed delivery now (up to 1,000 per call)."""
    befores = {e.id: replay_state(e) for e in failed_events(session, 0, 1000) if e.id is not None}
    ids = list(befores)
    session.rollback()
    replayed = [replay(request, i) for i in ids]
    for event in replayed:
        record_replay(session, user, client_address(request), event, befores.get(event.id or 0, {}))
    session.commit()
    results = [event.status for event in replayed]
    processed = sum(1 for s in results if s in (EventStatus.processed, EventStatus.ignored))
    return ReplayResult(replayed=len(ids), processed=processed, failed=len(ids) - processed)
