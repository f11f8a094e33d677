from __future__ import annotations

import itertools
from datetime import date, timedelta

from web.charts import bar_chart, line_chart, nice_ticks


def test_nice_ticks_cover_range() -> None:
    ticks = nice_ticks(-9.9, 21.9)
    assert ticks[0] <= -9.9 and ticks[-1] >= 21.9
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_bars_scale_with_values() -> None:
    chart = bar_chart([("AA", "American", 10.0), ("UA", "United", 20.0), ("XX", "none", None)])
    assert len(chart.bars) == 2  # None skipped
    aa, ua = chart.bars
    assert ua.width > aa.width > 0
    assert abs(ua.width - 2 * aa.width) < 0.5  # proportional from the zero line
    assert aa.x == ua.x == round(chart.zero_x, 2)
    assert chart.zero_x == chart.plot_left  # all positive: 0 at the left edge
    assert max(b.x + b.width for b in chart.bars) <= chart.plot_right + 0.01


def test_negative_bars_extend_left_of_zero() -> None:
    chart = bar_chart([("AS", "Alaska", -10.0), ("F9", "Frontier", 20.0)])
    neg, pos = chart.bars
    assert neg.negative and not pos.negative
    assert chart.plot_left < chart.zero_x < chart.plot_right
    assert abs(neg.x + neg.width - chart.zero_x) < 0.01
    assert abs(pos.x - chart.zero_x) < 0.01


def test_empty_data() -> None:
    assert bar_chart([]).empty
    assert bar_chart([("AA", "American", None)]).empty
    chart = line_chart([])
    assert chart.empty and chart.line_path == ""


def test_line_chart_over_a_year() -> None:
    start = date(2013, 1, 1)
    series = [(start + timedelta(days=i), float(900 + i % 7)) for i in range(365)]
    chart = line_chart(series, highlight_month=2)
    assert chart.points == 365
    assert chart.line_path.startswith(f"M{float(chart.plot_left)},")
    assert len(chart.x_ticks) == 12 and chart.x_ticks[0].label == "Jan"
    assert chart.y_ticks[0].label == "0"
    assert chart.highlight is not None and chart.highlight[0] < chart.highlight[1]
    ys = [float(p.split(",")[1]) for p in chart.line_path[1:].split(" L")]
    assert min(ys) >= chart.plot_top and max(ys) <= chart.plot_bottom
