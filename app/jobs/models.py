"""What every worker process records of its background jobs' runs, for `/metrics`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime


class JobStat(SQLModel, table=True):
    """The latest run of a job in any process (one row per job, overwritten)."""

    __tablename__ = "job_stat"
    name: str = Field(primary_key=True, max_length=50)
    last_started_at: datetime = Field(sa_type=UTCDateTime)
    last_seconds: float = 0.0
    last_handled: int = 0
    runs: int = 0  # runs recorded (those that handled something, or the first in a while)
    failures: int = 0
