"""A worker loads at start what the first event would otherwise load while it holds the
batch's locks (on SQLite the one write lock, with webhooks waiting for it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: the test process has imported everything already.
_FIRST_EVENT = """
import sys
from datetime import UTC, datetime, timedelta

from app.core import migrate
from app.core.db import make_engine
from app.demo import deliveries as d
from app.processing import processor
from tests.factories.deliveries import store_vk, vk_page
from tests.factories.directory import cipher

url = sys.argv[1]
migrate.upgrade(url)
engine = make_engine(url)
page_id, page = vk_page(engine)
at = datetime.now(UTC) - timedelta(minutes=5)
store_vk(engine, page_id, page, [d.vk_comment(page, "300000001", 7, 70, "Когда починят дорогу?", at)])
clock = lambda: datetime.now(UTC)
processor.warm_up(clock)
before = set(sys.modules)
assert processor.process_pending(engine, cipher(), clock) == 1
print(sorted(set(sys.modules) - before))
"""


@pytest.mark.sqlite
def test_the_first_event_after_warm_up_imports_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_EVENT, f"sqlite:///{tmp_path / 'warm.db'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", "the first event imported modules: " + done.stdout
