"""Which jobs a worker runs is wired by the entry points, the same in both."""

from __future__ import annotations

from app import cli, main


def test_the_server_and_the_worker_command_run_the_same_jobs() -> None:
    assert cli.background_jobs() == main.background_jobs()
    names = [job.name for job in main.background_jobs()]
    assert names == ["retry_events", "outbox", "sla_sweep", "sla_notify"]
