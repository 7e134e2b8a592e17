"""The trend chart's value labels fit left of the plot at any scale (a region's weeks
run to tens of thousands, and «30 000» was cut to «0 000»)."""

from __future__ import annotations

from app.reports import chart
from app.reports.figures import SlaRow


def _rows(peak: int) -> list[SlaRow]:
    return [
        SlaRow(key=f"d{i}", name="", questions=peak * i // 3, on_time=0, late=0) for i in range(4)
    ]


def test_the_scale_labels_have_room_at_any_size() -> None:
    small = chart.trend_chart(_rows(3), ["a", "b", "c", "d"])
    assert small.left == chart.LEFT
    big = chart.trend_chart(_rows(25_000), ["a", "b", "c", "d"])
    widest = max(len(f"{value:,}") for _, value in big.grid)  # «30,000»: 6 characters
    assert widest == 6
    assert big.left >= chart.LABEL_PAD + chart.DIGIT_PX * widest > chart.LEFT
    first_x = float(big.lines[0].points.split()[0].split(",")[0])
    assert first_x == big.left
