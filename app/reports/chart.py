"""The trend chart's geometry, drawn as inline SVG by `templates/dashboard/_chart.html`.

Pure arithmetic on the trend's rows: scales, a polyline per series, a few gridlines
with round values, and where each line's label goes (its last point, nudged apart so
labels never overlap). No JavaScript, no CDN; the same numbers are in a table beside.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.reports.figures import SlaRow

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 120, 14, 30
# The value labels' room: about 7 px per character of the 12 px font, and a gap.
DIGIT_PX, LABEL_PAD = 7, 10
# The phone's chart: drawn at its own size so its text stays legible (a 640-wide
# chart scaled to 360 px would shrink 12 px labels to 7 px). Its right margin holds the
# longest series label, «С опозданием» in bold (about 95 px; at 96 it was cut off).
NARROW = {"width": 360, "height": 240, "right": 108, "ticks": 4}
LABEL_GAP = 16
# (field of SlaRow, label, css modifier)
SERIES: tuple[tuple[str, str, str], ...] = (
    ("questions", "Получено", "received"),
    ("on_time", "Вовремя", "ontime"),
    ("late", "С опозданием", "late"),
)


@dataclass
class Line:
    key: str
    label: str
    points: str
    dots: list[tuple[float, float, int]]
    label_y: float


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_right: float = WIDTH - RIGHT
    bottom: float = HEIGHT - BOTTOM
    key: str = "wide"
    lines: list[Line] = field(default_factory=list)
    grid: list[tuple[float, int]] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True


def _nice_top(peak: int) -> tuple[int, int]:
    """A round top of the scale and its step (4 steps at most)."""
    if peak <= 4:
        return 4, 1
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1, math.ceil(step))
    return step * math.ceil(peak / step), step


def trend_chart(
    rows: Sequence[SlaRow],
    short_names: Sequence[str],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    right: int = RIGHT,
    ticks: int = 7,
    key: str = "wide",
) -> Chart:
    """The chart of the trend `rows` (days or weeks, in order); `short_names` label the
    x axis («1.12»); at most `ticks` of them are shown."""
    chart = Chart(
        width=width, height=height, plot_right=width - right, bottom=height - BOTTOM, key=key
    )
    if not rows:
        return chart
    chart.empty = False
    peak = max(max(getattr(r, f) for f, _, _ in SERIES) for r in rows)
    top, step = _nice_top(int(peak))
    # The scale's widest label («30 000»: digits and group separators) must fit left of
    # the plot: a region's weeks run to tens of thousands.
    chart.left = max(LEFT, LABEL_PAD + DIGIT_PX * len(f"{top:,}"))
    plot_w = chart.plot_right - chart.left
    plot_h = chart.bottom - TOP
    n = len(rows)

    def x(i: int) -> float:
        return round(chart.left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def y(v: float) -> float:
        return round(chart.bottom - plot_h * v / top, 1)

    chart.grid = [(y(v), v) for v in range(0, top + 1, step)]
    every = max(1, math.ceil(n / ticks))
    chart.ticks = [(x(i), short_names[i]) for i in range(0, n, every)]
    labels: list[Line] = []
    for f, label, css in SERIES:
        values = [int(getattr(r, f)) for r in rows]
        pts = [(x(i), y(v), v) for i, v in enumerate(values)]
        labels.append(
            Line(
                key=css,
                label=label,
                points=" ".join(f"{px},{py}" for px, py, _ in pts),
                dots=pts if n <= 31 else [],
                label_y=pts[-1][1],
            )
        )
    # Labels at the lines' ends, pushed apart top to bottom so none overlap.
    ordered = sorted(labels, key=lambda line: line.label_y)
    for prev, cur in itertools.pairwise(ordered):
        cur.label_y = max(cur.label_y, prev.label_y + LABEL_GAP)
    overflow = ordered[-1].label_y - (chart.bottom + 4)
    if overflow > 0:
        for line in ordered:
            line.label_y -= overflow
    chart.lines = labels
    return chart
