"""The inbox's periodic jobs."""

from __future__ import annotations

from app.worker import Job

JOBS: list[tuple[str, Job]] = []
