"""The one receiving endpoint: verify, store durably, answer, then process.

    POST /webhooks/{platform}/{page_key}

The platform gets its answer only after the raw delivery is committed (group
commit, see writer.py); processing runs after the answer, in a processor (see
processor.py), and a failure there leaves the delivery marked failed for retry
and replay.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.clock import Clock
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import reading_engine
from app.core.json_api import error_response
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake.writer import Delivery, DeliveryWriter
from webhooks import Ack, Malformed, PageSecrets, Unauthentic, get_adapter, vk_stored

log = logging.getLogger("otklik.receive")
router = APIRouter(tags=["webhooks"])

MAX_BODY = 1024 * 1024
PLATFORMS = ["vk", "telegram", "ok", "max", "generic"]
_PAGE_TTL = 10.0  # seconds a page's credentials are cached in a process
# Bounds of the per-process page cache: found pages, least recently used dropped
# first; keys that name no page, remembered briefly so a repeated unknown key costs
# one read per `_MISS_TTL`, never memory without bound.
_MAX_PAGES = 10_000
_MAX_MISSES = 1_000
_MISS_TTL = 2.0
_KEY_MAX = 64  # Page.key's length: a longer key names no page, no read needed


@dataclass(frozen=True, slots=True)
class KnownPage:
    id: int
    platform: str
    secrets: PageSecrets
    active: bool


class Processor(Protocol):
    """What intake needs of processing: a wake-up after a commit, and a clean stop.

    Intake never imports processing; `app.main` hands the processor in.
    """

    def wake(self) -> None: ...

    def close(self) -> None: ...


ProcessorFactory = Callable[[sa.Engine, Cipher, Clock], Processor]


class Receiver:
    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        cipher: Cipher,
        clock: Clock,
        processor_factory: ProcessorFactory | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.cipher = cipher
        self.clock = clock
        # Without a processor here, `otklik worker` processes what is stored.
        self.processor = processor_factory(engine, cipher, clock) if processor_factory else None
        self.writer = DeliveryWriter(engine, self.processor.wake if self.processor else None)
        self._pages: OrderedDict[tuple[str, str], tuple[float, KnownPage]] = OrderedDict()
        self._misses: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._ok_networks = [
            ipaddress.ip_network(n.strip())
            for n in settings.ok_allowed_networks.split(",")
            if n.strip()
        ]

    def cached_page(self, platform: str, key: str) -> tuple[bool, KnownPage | None]:
        if len(key) > _KEY_MAX:
            return True, None
        now = time.monotonic()
        with self._cache_lock:
            cached = self._pages.get((platform, key))
            if cached is not None and now - cached[0] < _PAGE_TTL:
                self._pages.move_to_end((platform, key))
                return True, cached[1]
            missed = self._misses.get((platform, key))
            if missed is not None and now - missed < _MISS_TTL:
                return True, None
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
        self._remember((platform, key), now, known)
        return known

    def _remember(self, where: tuple[str, str], now: float, known: KnownPage | None) -> None:
        with self._cache_lock:
            if known is None:
                self._pages.pop(where, None)
                self._misses[where] = now
                self._misses.move_to_end(where)
                if len(self._misses) > _MAX_MISSES:
                    self._misses.popitem(last=False)
            else:
                self._misses.pop(where, None)
                self._pages[where] = (now, known)
                self._pages.move_to_end(where)
                if len(self._pages) > _MAX_PAGES:
                    self._pages.popitem(last=False)

    def ok_source_allowed(self, host: str | None) -> bool:
        if not self._ok_networks:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self._ok_networks)

    async def close(self) -> None:
        await self.writer.aclose()
        if self.processor is not None:
            await run_in_threadpool(self.processor.close)


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
        return error_response(403, "unauthentic", "Authenticity check failed")
    except Malformed as exc:
        return error_response(400, "malformed", str(exc))
    delivery = Delivery(
        platform=page.platform,
        page_id=page.id,
        delivery_key=delivery_key[:255],
        # VK copies the page's secret into every body: it is not kept.
        body=vk_stored.stored_body(page.secrets, body) if page.platform == "vk" else body,
        received_at=now,
    )
    return delivery, ack


def receiver_for(app: FastAPI) -> Receiver:
    receiver: Receiver | None = getattr(app.state, "receiver", None)
    if receiver is None:
        state = app.state
        receiver = Receiver(
            state.engine,
            state.settings,
            state.cipher,
            state.clock,
            state.processor_factory if state.process_events else None,
        )
        state.receiver = receiver
    return receiver


def get_receiver(request: Request) -> Receiver:
    return receiver_for(request.app)


async def _read_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        # The server delivers no more than the declared length.
        return await request.body() if int(declared) <= MAX_BODY else None
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
    # Path parameters are read from the request: WebhookFastPath calls this endpoint
    # without FastAPI's routing and parameter machinery.
    openapi_extra={
        "parameters": [
            {"name": "platform", "in": "path", "required": True, "schema": {"enum": PLATFORMS}},
            {"name": "page_key", "in": "path", "required": True, "schema": {"type": "string"}},
        ]
    },
)
async def receive(request: Request) -> Response:
    platform: str = request.path_params["platform"]
    page_key: str = request.path_params["page_key"]
    if platform not in PLATFORMS:
        return error_response(404, "unknown_platform", f"Unknown platform {platform!r}")
    receiver = get_receiver(request)
    body = await _read_body(request)
    if body is None:
        return error_response(413, "too_large", "Body over 1 MiB")
    try:
        hit, page = receiver.cached_page(platform, page_key)
        if not hit:
            # A database read: off the event loop.
            page = await run_in_threadpool(receiver.page, platform, page_key)
    except Exception as exc:
        log.error("page lookup failed", extra={"fields": {"error": str(exc)}})
        return error_response(503, "unavailable", "Database unavailable", {"Retry-After": "10"})
    if page is None or not page.active:
        return error_response(404, "unknown_page", "No such page")
    if platform == "ok" and not receiver.ok_source_allowed(
        request.client.host if request.client else None
    ):
        return error_response(403, "forbidden_source", "Source address not allowed")
    headers = {k.lower(): v for k, v in request.headers.items()}
    checked = check(page, headers, body, receiver.clock())
    if isinstance(checked, Response):
        return checked
    delivery, ack = checked
    try:
        await receiver.writer.store(delivery)
    except Exception:
        # Never "ok" without a commit: the platform will deliver again.
        return error_response(
            503, "unavailable", "Could not store the event, retry later", {"Retry-After": "30"}
        )
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


class WebhookFastPath:
    """ASGI middleware: webhook deliveries go straight to `receive`.

    FastAPI's routing, dependency solving and exception layers cost more than the
    rest of a delivery's handling together (storage included); this is the route
    that carries nearly all of the traffic, so it skips them. The route above stays
    the documented one, and answers whatever does not come this way.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive_: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/webhooks/"):
                platform, _, page_key = path[len("/webhooks/") :].partition("/")
                if platform and page_key and "/" not in page_key:
                    scope["path_params"] = {"platform": platform, "page_key": page_key}
                    response = await receive(Request(scope, receive_))
                    await response(scope, receive_, send)
                    return
        await self.app(scope, receive_, send)
