"""`make bench`'s processing figure runs on the demo region as it is seeded today: a
change to the demo (a settled delivery of its own) once stopped it on its first event."""

from __future__ import annotations

import pytest

from bench.processing import bench_processing

pytestmark = pytest.mark.sqlite_run


def test_the_processing_bench_runs_on_a_small_mix(capsys: pytest.CaptureFixture[str]) -> None:
    bench_processing(events=60, repeat=1)
    out = capsys.readouterr().out
    assert "in batches (processor)" in out
    assert "events/s" in out
