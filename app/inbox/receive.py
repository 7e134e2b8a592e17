"""The one receiving endpoint: verify, store durably, answer, then process.

    POST /webhooks/{platform}/{page_key}

The platform gets its answer only after the raw delivery is committed (group
commit, see writer.py); processing runs after the answer, in the ingest thread,
and a failure there leaves the delivery marked failed for retry and replay.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session, col, select

from app.clock import Clock
from app.config import Settings
from app.crypto import Cipher
from app.db import reading_engine
from app.directory import service as directory_service
from app.directory.models import Page
from app.inbox import service as inbox_service
from app.inbox.models import InboundEvent
from app.inbox.writer import Delivery, DeliveryWriter, WriteGate
from webhooks import Ack, Malformed, PageSecrets, Unauthentic, get_adapter

log = logging.getLogger("otklik.receive")
router = APIRouter(tags=["webhooks"])

MAX_BODY = 1024 * 1024
PLATFORMS = ("vk", "telegram", "ok", "max", "generic")
_PAGE_TTL = 10.0  # seconds a page's credentials are cached in a process


@dataclass(frozen=True, slots=True)
class KnownPage:
    id: int
    platform: str
    secrets: PageSecrets
    active: bool


class Ingestor:
    """A thread that processes stored deliveries as soon as they are acknowledged."""

    def __init__(self, engine: sa.Engine, cipher: Cipher, clock: Clock, gate: WriteGate) -> None:
        self._engine = engine
        self._gate = gate
        self._cipher = cipher
        self._clock = clock
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="otklik-ingest", daemon=True)
        self._started = False

    def submit(self, event_id: int) -> None:
        with self._idle:
            if not self._started:
                self._thread.start()
                self._started = True
            self._pending += 1
        self._queue.put(event_id)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            event_id = self._queue.get()
            if event_id is None:
                return
            try:
                # One transaction per event: the webhook writer never waits long for
                # the database, whatever the backlog.
                with self._gate.worker():
                    process_one(self._engine, event_id, self._cipher, self._clock)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


def process_one(engine: sa.Engine, event_id: int, cipher: Cipher, clock: Clock) -> bool:
    """Process one stored delivery in its own transaction; on failure mark it failed."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            event = session.get(InboundEvent, event_id)
            if event is None or event.status in ("processed", "ignored"):
                return True
            inbox_service.process(session, event, cipher=cipher, now=clock())
            session.commit()
            return True
    except Exception as exc:
        _record_failure(engine, event_id, exc, clock)
        return False


def _record_failure(engine: sa.Engine, event_id: int, exc: Exception, clock: Clock) -> None:
    log.warning(
        "processing failed",
        extra={"fields": {"event_id": event_id, "error": f"{type(exc).__name__}: {exc}"}},
        exc_info=not isinstance(exc, Malformed),
    )
    try:
        with Session(engine) as session:
            inbox_service.mark_failed(session, event_id, exc, clock())
            session.commit()
    except Exception:
        log.exception("could not mark the event failed", extra={"fields": {"event_id": event_id}})


class Receiver:
    def __init__(self, engine: sa.Engine, settings: Settings, cipher: Cipher, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.cipher = cipher
        self.clock = clock
        self.writer = DeliveryWriter(engine)
        self.ingestor = Ingestor(engine, cipher, clock, self.writer.gate)
        self._pages: dict[tuple[str, str], tuple[float, KnownPage | None]] = {}
        self._ok_networks = [
            ipaddress.ip_network(n.strip())
            for n in settings.ok_allowed_networks.split(",")
            if n.strip()
        ]

    def cached_page(self, platform: str, key: str) -> tuple[bool, KnownPage | None]:
        cached = self._pages.get((platform, key))
        if cached is not None and time.monotonic() - cached[0] < _PAGE_TTL:
            return True, cached[1]
        return False, None

    def page(self, platform: str, key: str) -> KnownPage | None:
        hit, known = self.cached_page(platform, key)
        if hit:
            return known
        now = time.monotonic()
        with Session(reading_engine(self.engine)) as session:
            row = session.exec(
                select(Page).where(col(Page.key) == key, col(Page.platform) == platform)
            ).first()
            known = (
                KnownPage(
                    id=row.id or 0,
                    platform=str(row.platform),
                    active=row.is_active,
                    secrets=directory_service.page_secrets(
                        row, self.cipher, self.settings.api_url(platform)
                    ),
                )
                if row is not None
                else None
            )
        self._pages[(platform, key)] = (now, known)
        return known

    def ok_source_allowed(self, host: str | None) -> bool:
        if not self._ok_networks:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self._ok_networks)

    async def close(self) -> None:
        await run_in_threadpool(self.writer.close)
        await run_in_threadpool(self.ingestor.close)


def check(
    page: KnownPage, headers: dict[str, str], body: bytes, now: datetime
) -> tuple[Delivery, Ack] | Response:
    """Verify a delivery; the delivery to store and the answer, or the error response.

    A handshake that must not be stored (VK confirmation) comes back as its response.
    """
    adapter = get_adapter(page.platform)
    try:
        adapter.verify(page.secrets, headers, body)
        ack = adapter.ack(page.secrets, body)
        if not ack.store:
            return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
        delivery_key = adapter.delivery_key(body)
    except Unauthentic as exc:
        log.warning(
            "unauthentic delivery",
            extra={"fields": {"platform": page.platform, "page_id": page.id, "reason": str(exc)}},
        )
        return _error(403, "unauthentic", "Authenticity check failed")
    except Malformed as exc:
        return _error(400, "malformed", str(exc))
    delivery = Delivery(
        platform=page.platform,
        page_id=page.id,
        delivery_key=delivery_key[:255],
        body=body,
        received_at=now,
    )
    return delivery, ack


def get_receiver(request: Request) -> Receiver:
    receiver: Receiver | None = getattr(request.app.state, "receiver", None)
    if receiver is None:
        state = request.app.state
        receiver = Receiver(state.engine, state.settings, state.cipher, state.clock)
        state.receiver = receiver
    return receiver


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def _read_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/{platform}/{page_key}",
    name="webhooks:receive",
    summary="Receive a platform's webhook delivery",
    responses={
        403: {"description": "authenticity check failed"},
        503: {"description": "could not store"},
    },
)
async def receive(platform: str, page_key: str, request: Request) -> Response:
    if platform not in PLATFORMS:
        return _error(404, "unknown_platform", f"Unknown platform {platform!r}")
    receiver = get_receiver(request)
    body = await _read_body(request)
    if body is None:
        return _error(413, "too_large", "Body over 1 MiB")
    try:
        hit, page = receiver.cached_page(platform, page_key)
        if not hit:
            # A database read: off the event loop.
            page = await run_in_threadpool(receiver.page, platform, page_key)
    except Exception as exc:
        log.error("page lookup failed", extra={"fields": {"error": str(exc)}})
        return _error(503, "unavailable", "Database unavailable", {"Retry-After": "10"})
    if page is None or not page.active:
        return _error(404, "unknown_page", "No such page")
    if platform == "ok" and not receiver.ok_source_allowed(
        request.client.host if request.client else None
    ):
        return _error(403, "forbidden_source", "Source address not allowed")
    headers = {k.lower(): v for k, v in request.headers.items()}
    checked = check(page, headers, body, receiver.clock())
    if isinstance(checked, Response):
        return checked
    delivery, ack = checked
    try:
        stored = await asyncio.wrap_future(receiver.writer.submit(delivery))
    except Exception:
        # Never "ok" without a commit: the platform will deliver again.
        return _error(
            503, "unavailable", "Could not store the event, retry later", {"Retry-After": "30"}
        )
    if stored.event_id is not None:
        receiver.ingestor.submit(stored.event_id)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
