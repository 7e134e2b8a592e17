from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from app.core.config import Settings
from app.core.crypto import Cipher
from app.jobs.context import JobContext
from tests.conftest import SECRET, FrozenClock


@pytest.fixture
def ctx(live_engine: sa.Engine, settings: Settings, clock: FrozenClock) -> Iterator[JobContext]:
    """A job context on the real engine: its transactions really commit (the data is wiped)."""
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(500))) as http:
        yield JobContext(
            engine=live_engine, settings=settings, clock=clock, http=http, cipher=Cipher(SECRET)
        )
