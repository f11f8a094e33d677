"""Server-side chart geometry. Views call these to get plain data; Jinja templates
(``templates/charts/``) turn it into inline SVG. No JavaScript, no external assets.

All coordinates are in SVG user units inside a ``viewBox`` of ``width`` x ``height``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

MONTH_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``lo..hi`` (about ``count`` of them, steps of 1/2/5 x 10^n)."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + 1
    raw_step = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


@dataclass
class Bar:
    """One horizontal bar: its row label, value, and rectangle (x, y, width, height)."""

    label: str
    title: str
    value: float
    x: float
    y: float
    width: float
    height: float
    negative: bool


@dataclass
class Tick:
    """An axis tick: its position along the axis and its text."""

    pos: float
    label: str


@dataclass
class BarChart:
    """Horizontal bar chart geometry. ``zero_x`` is where the value 0 sits."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    zero_x: float
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    row_height: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(
    rows: list[tuple[str, str, float | None]],
    *,
    width: float = 440,
    row_height: float = 24,
    label_width: float = 40,
) -> BarChart:
    """Lay out horizontal bars for ``rows`` of ``(label, title, value)``; None values are skipped.

    Bars grow right from 0 for positive values and left for negative ones; the scale always
    includes 0 and is widened to round tick values.
    """
    data = [(label, title, float(v)) for label, title, v in rows if v is not None]
    top, bottom_margin, right_margin = 8.0, 46.0, 36.0
    height = top + max(len(data), 1) * row_height + bottom_margin
    chart = BarChart(
        width=width,
        height=height,
        plot_left=label_width,
        plot_right=width - right_margin,
        plot_top=top,
        plot_bottom=height - bottom_margin,
        zero_x=label_width,
        row_height=row_height,
    )
    if not data:
        return chart
    values = [v for _, _, v in data]
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
    lo, hi = ticks[0], ticks[-1]
    span = chart.plot_right - chart.plot_left

    def sx(v: float) -> float:
        return chart.plot_left + (v - lo) / (hi - lo) * span

    chart.zero_x = sx(0.0)
    chart.ticks = [Tick(sx(t), f"{t:g}") for t in ticks]
    bar_h = row_height * 0.7
    for i, (label, title, v) in enumerate(data):
        x0, x1 = sorted((chart.zero_x, sx(v)))
        chart.bars.append(
            Bar(
                label=label,
                title=title,
                value=v,
                x=round(x0, 2),
                y=round(top + i * row_height + (row_height - bar_h) / 2, 2),
                width=round(x1 - x0, 2),
                height=round(bar_h, 2),
                negative=v < 0,
            )
        )
    return chart


@dataclass
class LineChart:
    """Line/area chart geometry over dates: SVG path strings plus axis ticks."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    line_path: str = ""
    area_path: str = ""
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    highlight: tuple[float, float] | None = None  # x range of the selected month
    points: int = 0
    minimum: tuple[str, float] | None = None
    maximum: tuple[str, float] | None = None

    @property
    def empty(self) -> bool:
        return self.points == 0


def line_chart(
    series: list[tuple[date, float]],
    *,
    width: float = 560,
    height: float = 280,
    highlight_month: int | None = None,
) -> LineChart:
    """Lay out a time series of ``(day, value)`` sorted by day as a line with a filled area.

    The y axis starts at 0; x ticks sit at the first day of each month present. If
    ``highlight_month`` is given, ``highlight`` is the x range covering that month's days.
    """
    chart = LineChart(
        width=width, height=height, plot_left=60, plot_right=width - 14, plot_top=12,
        plot_bottom=height - 30,
    )  # fmt: skip
    if not series:
        return chart
    series = sorted(series)
    first, last = series[0][0], series[-1][0]
    days = max((last - first).days, 1)
    y_ticks = nice_ticks(0.0, max(v for _, v in series), 4)
    y_hi = y_ticks[-1] or 1.0
    x_span = chart.plot_right - chart.plot_left
    y_span = chart.plot_bottom - chart.plot_top

    def sx(d: date) -> float:
        return round(chart.plot_left + (d - first).days / days * x_span, 2)

    def sy(v: float) -> float:
        return round(chart.plot_bottom - v / y_hi * y_span, 2)

    coords = [(sx(d), sy(v)) for d, v in series]
    chart.line_path = "M" + " L".join(f"{x},{y}" for x, y in coords)
    chart.area_path = (
        f"{chart.line_path} L{coords[-1][0]},{chart.plot_bottom} "
        f"L{coords[0][0]},{chart.plot_bottom} Z"
    )
    chart.y_ticks = [Tick(sy(t), f"{t:,.0f}") for t in y_ticks]
    seen_months = sorted({(d.year, d.month) for d, _ in series})
    chart.x_ticks = [Tick(sx(max(date(y, m, 1), first)), MONTH_ABBR[m - 1]) for y, m in seen_months]
    if highlight_month is not None:
        in_month = [d for d, _ in series if d.month == highlight_month]
        if in_month:
            chart.highlight = (sx(in_month[0]), sx(in_month[-1]))
    chart.points = len(series)
    lo = min(series, key=lambda p: p[1])
    hi = max(series, key=lambda p: p[1])
    chart.minimum = (lo[0].isoformat(), lo[1])
    chart.maximum = (hi[0].isoformat(), hi[1])
    return chart
