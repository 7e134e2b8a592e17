"""Operations: readiness (with processing's lag) and metrics for Prometheus.

Both read the database, so every web process tells the same truth about every
worker process. Neither needs signing in (a load balancer and Prometheus ask).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlmodel import Session

from app.core import migrate
from app.core.db import reading_engine, write_refusal
from app.core.json_api import error_response
from app.processing import admin
from app.processing import metrics as processing_metrics

log = logging.getLogger("otklik.ops")
router = APIRouter(tags=["ops"])


@router.get("/readyz", name="readyz", summary="The database is reachable and migrated to head")
def readyz(request: Request) -> Response:
    """200 `ready`; 200 `degraded` while processing lags more than
    `OTKLIK_READY_MAX_LAG` seconds (the process still takes webhooks: taking it out of
    the balancer would not help the workers); 503 when the database is unreachable
    or not migrated, or refuses writes (a read-only SQLite file, a PostgreSQL standby):
    such a process cannot store a webhook."""
    state = request.app.state
    engine = reading_engine(state.engine)
    try:
        at_head = migrate.is_at_head(engine)
    except Exception as exc:
        log.warning("readiness: database unreachable", extra={"fields": {"error": str(exc)}})
        return error_response(
            503, "database_unreachable", "База данных недоступна", {"Retry-After": "5"}
        )
    if not at_head:
        return error_response(
            503,
            "migrations_pending",
            "Схема базы устарела: выполните otklik migrate",
            {"Retry-After": "30"},
        )
    refusal = write_refusal(state.engine)
    if refusal is not None:
        log.warning("readiness: database refuses writes", extra={"fields": {"error": refusal}})
        return error_response(
            503,
            "database_read_only",
            "База данных не принимает записи",
            {"Retry-After": "30"},
        )
    with Session(engine) as session:
        lag = processing_metrics.oldest_pending_seconds(session, state.clock())
    limit = state.settings.ready_max_lag
    if lag > limit:
        return JSONResponse(
            {
                "status": "degraded",
                "reasons": [f"processing lags {lag:.0f} s (more than {limit:g} s)"],
                "processing_lag_seconds": round(lag, 1),
            }
        )
    return JSONResponse({"status": "ready", "processing_lag_seconds": round(lag, 1)})


@router.get("/metrics", name="metrics", summary="Processing and publishing figures (Prometheus)")
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: deliveries by status, oldest pending age, processed in
    the last minute, outbox backlog and its oldest item, each job's latest run."""
    state = request.app.state
    now = state.clock()
    with Session(reading_engine(state.engine)) as session:
        figures = processing_metrics.figures(session, now)
    return PlainTextResponse(
        processing_metrics.prometheus(figures, now),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


router.include_router(admin.router)
