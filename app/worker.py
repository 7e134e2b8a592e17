"""The worker's registry of periodic jobs, apart from the web application: `otklik
worker` imports this and the rooms its jobs live in, not every page and API of
`app.main` (a third of a worker's start-up CPU, which weighs on short drains and on
every restart)."""

from __future__ import annotations

from app.jobs.runner import Job


def background_jobs() -> list[Job]:
    """The registry: the periodic jobs a worker runs, each on a thread and cadence of
    its own (`otklik worker`, and the app run alone with a worker of its own)."""
    from app.intake import retention as delivery_retention
    from app.jobs import upkeep
    from app.notifications import alert_bot
    from app.outbox import sender as outbox_sender
    from app.processing import jobs as processing_jobs
    from app.questions import citizens, retention
    from app.reports import fold as report_fold
    from app.reports import weekly_mail
    from app.sla import notify as sla_notify
    from app.sla import watcher as sla_watcher

    return [
        # Deliveries that came before their message are tried again within a second.
        Job("retry_events", processing_jobs.retry_events, interval=processing_jobs.RETRY_LOOK),
        # Its pause after work too: the report marks pass the thresholds again within
        # seconds (vacuumed 157 times in a 40 s bench run without it).
        Job("statistics", upkeep.keep_statistics, upkeep.INTERVAL, upkeep.INTERVAL),
        Job("outbox", outbox_sender.send_outbox),
        Job("sla_sweep", sla_watcher.sla_sweep),
        Job("sla_notify", sla_notify.deliver_notifications),
        # Names may come a few seconds late: at a busy hour every run finds new citizens.
        Job("citizen_names", citizens.resolve_citizen_names, interval=30.0, busy_pause=5.0),
        Job("alert_bot", alert_bot.poll_alert_bot),
        Job("weekly_reports", weekly_mail.send_weekly_reports, interval=300.0),
        Job("report_facts", report_fold.fold_marks, interval=30.0),
        Job("personal_data", retention.erase_expired, interval=retention.INTERVAL),
        Job(
            "old_deliveries",
            delivery_retention.erase_old_deliveries,
            interval=delivery_retention.INTERVAL,
        ),
    ]
