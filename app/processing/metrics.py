"""Lag, rate and backlog of processing and publishing, read from the database, so that
any web process reports what every worker process together does (`/metrics`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from app.intake.models import IS_PENDING, EventStatus, InboundEvent
from app.jobs import stats
from app.jobs.models import JobStat
from app.questions.models import OutboxItem, OutboxStatus

# Statuses of deliveries still to be dealt with, or that need an administrator.
_OPEN = [EventStatus.pending, EventStatus.waiting, EventStatus.failed, EventStatus.orphaned]
_OUTBOX_OPEN = [OutboxStatus.pending, OutboxStatus.sending]


@dataclass
class Figures:
    deliveries: dict[str, int]  # by status, those in _OPEN
    oldest_pending_seconds: float  # 0 when nothing is pending
    processed_last_minute: int
    outbox: dict[str, int]  # by status, pending and sending
    outbox_oldest_seconds: float
    jobs: list[JobStat] = field(default_factory=list)


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def oldest_pending_seconds(session: Session, now: datetime) -> float:
    """How long the oldest pending delivery has waited: processing's lag."""
    oldest = session.execute(
        sa.select(InboundEvent.received_at)  # type: ignore[call-overload]
        .where(IS_PENDING)
        .order_by(col(InboundEvent.id))
        .limit(1)
    ).scalar()
    return _age(now, oldest)


def figures(session: Session, now: datetime) -> Figures:
    deliveries = {str(s): 0 for s in _OPEN}
    rows = session.execute(
        sa.select(InboundEvent.status, sa.func.count())  # type: ignore[call-overload]
        .where(col(InboundEvent.status).in_(_OPEN))
        .group_by(col(InboundEvent.status))
    )
    deliveries.update({str(status): n for status, n in rows})
    processed = session.execute(
        sa.select(sa.func.count())
        .select_from(InboundEvent)
        .where(col(InboundEvent.processed_at) >= now - timedelta(minutes=1))
    ).scalar_one()
    outbox = {str(s): 0 for s in _OUTBOX_OPEN}
    rows = session.execute(
        sa.select(OutboxItem.status, sa.func.count(), sa.func.min(OutboxItem.created_at))  # type: ignore[call-overload]
        .where(col(OutboxItem.status).in_(_OUTBOX_OPEN))
        .group_by(col(OutboxItem.status))
    )
    oldest: datetime | None = None
    for status, n, first in rows:
        outbox[str(status)] = n
        oldest = first if oldest is None or (first is not None and first < oldest) else oldest
    return Figures(
        deliveries=deliveries,
        oldest_pending_seconds=oldest_pending_seconds(session, now),
        processed_last_minute=int(processed),
        outbox=outbox,
        outbox_oldest_seconds=_age(now, oldest),
        jobs=stats.latest(session),
    )


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in (labels or {}).items())
    return f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"


def prometheus(f: Figures, now: datetime) -> str:
    """The figures in Prometheus' text exposition format (version 0.0.4)."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[str]) -> None:
        out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples])

    metric(
        "otklik_deliveries",
        "gauge",
        "Stored deliveries not (yet) processed, by status.",
        [_line("otklik_deliveries", n, {"status": s}) for s, n in sorted(f.deliveries.items())],
    )
    metric(
        "otklik_deliveries_oldest_pending_seconds",
        "gauge",
        "Age of the oldest pending delivery: processing's lag.",
        [_line("otklik_deliveries_oldest_pending_seconds", f.oldest_pending_seconds)],
    )
    metric(
        "otklik_deliveries_processed_last_minute",
        "gauge",
        "Deliveries processed in the last 60 seconds, by every worker.",
        [_line("otklik_deliveries_processed_last_minute", f.processed_last_minute)],
    )
    metric(
        "otklik_outbox_items",
        "gauge",
        "Replies and outgoing webhooks waiting to be published, by status.",
        [_line("otklik_outbox_items", n, {"status": s}) for s, n in sorted(f.outbox.items())],
    )
    metric(
        "otklik_outbox_oldest_seconds",
        "gauge",
        "Age of the oldest item waiting in the outbox.",
        [_line("otklik_outbox_oldest_seconds", f.outbox_oldest_seconds)],
    )
    samples: dict[str, list[str]] = {
        "otklik_job_last_run_seconds": [],
        "otklik_job_last_run_age_seconds": [],
        "otklik_job_last_run_handled": [],
        "otklik_job_runs_total": [],
        "otklik_job_failures_total": [],
    }
    for job in f.jobs:
        jobs = {"job": job.name}
        samples["otklik_job_last_run_seconds"].append(
            _line("otklik_job_last_run_seconds", job.last_seconds, jobs)
        )
        samples["otklik_job_last_run_age_seconds"].append(
            _line("otklik_job_last_run_age_seconds", _age(now, job.last_started_at), jobs)
        )
        samples["otklik_job_last_run_handled"].append(
            _line("otklik_job_last_run_handled", job.last_handled, jobs)
        )
        samples["otklik_job_runs_total"].append(_line("otklik_job_runs_total", job.runs, jobs))
        samples["otklik_job_failures_total"].append(
            _line("otklik_job_failures_total", job.failures, jobs)
        )
    texts = {
        "otklik_job_last_run_seconds": ("gauge", "Duration of the job's latest recorded run "
                                        "(sla_sweep: the SLA sweep)."),
        "otklik_job_last_run_age_seconds": ("gauge", "Time since the job's latest recorded run "
                                            "began."),
        "otklik_job_last_run_handled": ("gauge", "Items the job's latest recorded run handled."),
        "otklik_job_runs_total": ("counter", "Recorded runs of the job, in every worker."),
        "otklik_job_failures_total": ("counter", "Runs of the job that failed."),
    }  # fmt: skip
    for name, (kind, text) in texts.items():
        metric(name, kind, text, samples[name])
    return "\n".join(out) + "\n"
