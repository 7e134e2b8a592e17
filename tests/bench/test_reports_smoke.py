"""`make bench`'s reports figures run end to end on a small region-year: the data set
written in bulk, the bench's users and tokens, a real `otklik serve`, every case
(including the dashboards just after a change in scope) answered 200."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.reports import bench_reports

pytestmark = pytest.mark.sqlite_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_reports_bench_runs_on_a_small_region_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_reports(
        2000,
        1,
        postgres=False,
        sqlite_url=f"sqlite:///{tmp_path / 'region-year.db'}",
        port=_free_port(),
    )
    out = capsys.readouterr().out
    for figure in (
        "dashboard, region, quarter (API)",
        "the same, each after a question in scope changed",
        "SLA report by institution, a year",
        "inbox of the backlog's institution",
        "server RSS",
    ):
        assert figure in out, figure
    assert out.count("target <") >= 7
