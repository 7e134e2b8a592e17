"""The application factory."""

from __future__ import annotations

import functools
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import LoginRequired, login_url
from app.core.clock import Clock
from app.core.config import Settings, get_settings
from app.core.crypto import Cipher
from app.core.db import make_engine, utcnow
from app.core.errors import DomainError
from app.core.json_api import error_response
from app.core.logs import request_id_var, setup_logging
from app.core.web import SECURITY_HEADERS, STATIC_DIR, View
from app.jobs.context import JobContext
from app.jobs.runner import Runner
from app.processing.processor import Processor
from app.questions import queue
from app.reports import percentiles as report_percentiles
from app.worker import background_jobs

log = logging.getLogger("otklik")


DATABASE_UNAVAILABLE = (
    "База данных временно недоступна. Повторите через минуту; "
    "если вы что-то отправляли, это не сохранено."
)
DATABASE_RETRY_AFTER = 15  # seconds


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/webhooks/")) or path in {"/healthz", "/readyz"}


def _error_page(request: Request, status: int, message: str) -> Response:
    view = View(request)
    if view.wants_fragment:
        return view.render(
            "_flash.html",
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
            message=message,
            level="error",
        )
    return view.render("errors/page.html", status_code=status, message=message, status=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        target = login_url(request)
        if request.headers.get("hx-request") == "true":
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> Response:
        if _wants_json(request):
            return error_response(exc.status_code, exc.code, exc.message)
        return _error_page(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "; ".join(problems) or "Неверные данные"
        if _wants_json(request):
            return error_response(422, "invalid", message)
        return _error_page(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "Не найдено", 405: "Метод не поддерживается"}.get(
            exc.status_code, str(exc.detail)
        )
        if _wants_json(request):
            return error_response(
                exc.status_code, code, message, headers=getattr(exc, "headers", None)
            )
        return _error_page(request, exc.status_code, message)

    @app.exception_handler(OverflowError)
    @app.exception_handler(sa.exc.DataError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # A number no column can hold (an id of 2**70, say): the caller's mistake.
        message = "Значение вне допустимого диапазона"
        if _wants_json(request):
            return error_response(422, "out_of_range", message)
        return _error_page(request, 422, message)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # The database is unreachable, read-only or full: a passing state, not a bug.
        # 503 with Retry-After (a client or platform tries again), never a traceback.
        log.error(
            "database unavailable",
            extra={"fields": {"path": request.url.path, "error": str(exc).splitlines()[0]}},
        )
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
        if _wants_json(request):
            return error_response(503, "unavailable", DATABASE_UNAVAILABLE, headers)
        response = _error_page(request, 503, DATABASE_UNAVAILABLE)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"fields": {"path": request.url.path}})
        message = f"Внутренняя ошибка. Код запроса: {request_id_var.get() or '-'}"
        if _wants_json(request):
            return error_response(500, "internal", message)
        return _error_page(request, 500, message)


# Request ids: random per process, then a counter (uuid4 per request costs a system call).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


class RequestIdMiddleware:
    """A request id on every response and in every log line of the request.

    Plain ASGI rather than @app.middleware("http"): that wrapper runs each request
    in an extra task with memory streams and halved the webhook throughput.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given or f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            path: str = scope.get("path", "")
            if not path.startswith(("/webhooks/", "/static/")):
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope.get("method"),
                            "path": path,
                            "status": status,
                            "ms": round((time.perf_counter() - started) * 1000, 1),
                        }
                    },
                )


def create_app(
    settings: Settings | None = None,
    *,
    engine: sa.Engine | None = None,
    clock: Clock | None = None,
    http: httpx.Client | None = None,
    run_worker: bool | None = None,
    process_events: bool | None = None,
) -> FastAPI:
    """Build the application. Tests pass their own settings, engine, clock and HTTP client."""
    settings = settings or get_settings()
    owns_engine = engine is None
    start_worker = settings.run_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = None
        if start_worker:
            ctx = JobContext(
                engine=app.state.engine,
                settings=settings,
                clock=app.state.clock,
                http=app.state.http,
                cipher=app.state.cipher,
            )
            runner = Runner(ctx, background_jobs())
            runner.start()
        if app.state.process_events:
            from app.intake.receive import receiver_for

            # Deliveries stored before a restart are processed now, not at the next webhook.
            processor = receiver_for(app).processor
            assert processor is not None
            processor.wake()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop(timeout=10)
            receiver = getattr(app.state, "receiver", None)
            if receiver is not None:
                await receiver.close()
            if http is None:
                app.state.http.close()
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="Otklik API",
        version="1.0",
        description=(
            "Отклик: входящие вопросы граждан из официальных страниц ВКонтакте, Telegram, "
            "Одноклассников и MAX. JSON API: `Authorization: Bearer <token>`; ошибки "
            '`{"error": {"code", "message"}}`; списки `{"items", "next_cursor"}`.'
        ),
        lifespan=lifespan,
        docs_url=None,  # served below with vendored assets: no CDN, works offline
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.process_events = settings.process_events if process_events is None else process_events
    # Intake stores and wakes; processing is handed in here, so intake never imports it.
    app.state.processor_factory = functools.partial(Processor, settings=settings)
    app.state.engine = engine or make_engine(settings.database_url)
    # The queue's counts are cached per process; a new application starts afresh.
    queue.clear_cache()
    report_percentiles.clear_cache()
    app.state.clock = clock or utcnow
    app.state.cipher = Cipher(settings.resolved_secret_key())
    app.state.http = http or httpx.Client(
        timeout=httpx.Timeout(10.0, connect=5.0), headers={"User-Agent": "Otklik/1.0"}
    )

    from app.intake.receive import WebhookFastPath

    app.add_middleware(WebhookFastPath)
    app.add_middleware(RequestIdMiddleware)  # added last: the outer one

    _install_error_handlers(app)
    _include_routers(app)

    @app.get("/healthz", tags=["ops"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        # Vendored Swagger UI started by a static file: no CDN, no inline script (CSP).
        return HTMLResponse(_API_DOCS)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/inbox", status_code=303)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app


_API_DOCS = """<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
<title>Otklik API</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""


def _include_routers(app: FastAPI) -> None:
    from app.answering.api import router as actions_api
    from app.answering.views import router as question_pages
    from app.auth.admin_home import router as admin_home
    from app.auth.api import router as tokens_api
    from app.auth.views import router as auth_pages
    from app.directory.views import router as directory_api
    from app.intake.receive import router as webhooks_receiver
    from app.notifications.views import router as notification_pages
    from app.outbox.api import router as subscriptions_api
    from app.processing.api import router as events_api
    from app.processing.views import router as ops_routes
    from app.questions.api import router as questions_api
    from app.questions.views import router as inbox_pages
    from app.reports.question_views import router as figure_questions
    from app.reports.views import router as reports_api
    from app.routing.views import router as routing_api
    from app.sla.views import router as sla_api

    routers = (
        # First: routes are matched in order, and webhooks are most of the traffic.
        webhooks_receiver,
        auth_pages,
        directory_api,
        questions_api,
        actions_api,
        tokens_api,
        subscriptions_api,
        events_api,
        ops_routes,
        inbox_pages,
        question_pages,
        notification_pages,
        routing_api,
        sla_api,
        reports_api,
        figure_questions,
        admin_home,
    )
    for router in routers:
        # OpenAPI summaries: the first line of an endpoint's docstring, else its name.
        for route in router.routes:
            if isinstance(route, APIRoute) and route.summary is None:
                lines = (route.description or "").strip().splitlines()
                name = route.name.split(":")[-1].replace("_", " ").capitalize()
                route.summary = lines[0].rstrip(".") if lines else name
        app.include_router(router)


def app_factory() -> FastAPI:
    """For `uvicorn --factory app.main:app_factory`."""
    settings = get_settings()
    setup_logging(settings.log_level)
    return create_app(settings)


__all__: list[Any] = ["app_factory", "create_app"]
