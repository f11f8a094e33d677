"""Server-side chart geometry. Views call these to get plain data; Jinja templates
(``templates/charts/``) turn it into inline SVG. No JavaScript, no external assets.

All coordinates are in SVG user units inside a ``viewBox`` of ``width`` x ``height``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
    href: str | None = None  # the matching search (drill-down), if any


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

    @property
    def linked(self) -> bool:
        """True when bars link somewhere: the SVG is then a group of links, not an image."""
        return any(b.href for b in self.bars)


def bar_chart(
    rows: list[tuple[str, str, float | None]],
    *,
    width: float = 440,
    row_height: float = 24,
    label_width: float = 40,
    hrefs: Sequence[str | None] | None = None,
) -> BarChart:
    """Lay out horizontal bars for ``rows`` of ``(label, title, value)``; None values are skipped.

    Bars grow right from 0 for positive values and left for negative ones; the scale always
    includes 0 and is widened to round tick values. ``hrefs`` (one per row, in row order)
    makes each bar a link.
    """
    links = list(hrefs) if hrefs is not None else [None] * len(rows)
    data = [
        (label, title, float(v), href)
        for (label, title, v), href in zip(rows, links, strict=True)
        if v is not None
    ]
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
    values = [v for _, _, v, _ in data]
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
    lo, hi = ticks[0], ticks[-1]
    span = chart.plot_right - chart.plot_left

    def sx(v: float) -> float:
        return chart.plot_left + (v - lo) / (hi - lo) * span

    chart.zero_x = sx(0.0)
    chart.ticks = [Tick(sx(t), f"{t:g}") for t in ticks]
    bar_h = row_height * 0.7
    for i, (label, title, v, href) in enumerate(data):
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
                href=href,
            )
        )
    return chart


@dataclass
class MonthBand:
    """One month of a line chart's x axis: its x range and a link (drill-down) for it."""

    x: float
    width: float
    label: str
    href: str | None


@dataclass
class LineChart:
    """Line/area chart geometry over dates: SVG path strings plus axis ticks.

    ``line_path``/``area_path`` hold one subpath per run of consecutive days (a day without
    data breaks the line); ``dots`` are the days with no neighbour, drawn as points."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    zero_y: float = 0.0
    line_path: str = ""
    area_path: str = ""
    dots: list[tuple[float, float]] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    months: list[MonthBand] = field(default_factory=list)
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
    year: int | None = None,
    month_hrefs: Mapping[int, str] | None = None,
) -> LineChart:
    """Lay out a time series of ``(day, value)`` as a line with a filled area to 0.

    The x axis spans ``year`` (1 January to 31 December; days of other years are left out, so
    a stray date never stretches the axis) or, without ``year``, the series' own days. The y
    axis includes 0 and every value (negative ones too). x ticks sit at the first day of each
    month of the axis, labelled with its abbreviation. ``highlight_month`` gives
    ``highlight``, the x range of that month; ``month_hrefs`` (month number -> URL) gives
    ``months``, one clickable band per month of the axis.
    """
    chart = LineChart(
        width=width, height=height, plot_left=60, plot_right=width - 14, plot_top=12,
        plot_bottom=height - 30,
    )  # fmt: skip
    if year is not None:
        series = [(d, v) for d, v in series if d.year == year]
    if not series:
        return chart
    series = sorted(series)
    if year is not None:
        first, last = date(year, 1, 1), date(year, 12, 31)
    else:
        first, last = series[0][0], series[-1][0]
    days = max((last - first).days, 1)
    y_ticks = nice_ticks(min(0.0, *(v for _, v in series)), max(0.0, *(v for _, v in series)), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    if y_hi == y_lo:
        y_hi = y_lo + 1.0
    x_span = chart.plot_right - chart.plot_left
    y_span = chart.plot_bottom - chart.plot_top

    def sx(d: date) -> float:
        return round(chart.plot_left + (d - first).days / days * x_span, 2)

    def sy(v: float) -> float:
        return round(chart.plot_bottom - (v - y_lo) / (y_hi - y_lo) * y_span, 2)

    chart.zero_y = sy(0.0)
    runs: list[list[tuple[date, float]]] = []
    for d, v in series:
        if runs and (d - runs[-1][-1][0]).days == 1:
            runs[-1].append((d, v))
        else:
            runs.append([(d, v)])
    lines, areas = [], []
    for run in runs:
        coords = [(sx(d), sy(v)) for d, v in run]
        if len(coords) == 1:
            chart.dots.append(coords[0])
            continue
        line = "M" + " L".join(f"{x},{y}" for x, y in coords)
        lines.append(line)
        areas.append(f"{line} L{coords[-1][0]},{chart.zero_y} L{coords[0][0]},{chart.zero_y} Z")
    chart.line_path = " ".join(lines)
    chart.area_path = " ".join(areas)
    chart.y_ticks = [Tick(sy(t), f"{t:,.0f}") for t in y_ticks]
    month_starts = []
    cursor = date(first.year, first.month, 1)
    while cursor <= last:
        month_starts.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    chart.x_ticks = [Tick(sx(max(m, first)), MONTH_ABBR[m.month - 1]) for m in month_starts]
    if month_hrefs:
        for m in month_starts:
            end = min((m + timedelta(days=32)).replace(day=1), last + timedelta(days=1))
            x0, x1 = sx(max(m, first)), sx(end) if end <= last else chart.plot_right
            label = f"{MONTH_ABBR[m.month - 1]} {m.year}"
            chart.months.append(MonthBand(x0, round(x1 - x0, 2), label, month_hrefs.get(m.month)))
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
