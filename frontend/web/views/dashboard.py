"""Dashboard ``/``: headline figures and two charts, filtered by origin and month (GET form).

Data: ``/stats/carriers`` (headline figures, delay-by-carrier bars) and ``/stats/daily``
(flights per day over the whole year; the selected month is shaded).

Every worker keeps the rendered data part of the page (``_dashboard_data.html``: figures,
charts, tables) for ``DASHBOARD_CACHE_SECONDS`` (default 0.5 s, at most 1 s) per filter
combination, so under load most page views skip both backend calls, the chart building and
the rendering of the 365-row table (the biggest cost per page, see docs/performance.md); a
write still shows within a second (the backend invalidates its own aggregate cache at the
write). Only what is the same for every visitor is kept: the rest of the page (form, flash
messages, anything per user) is rendered per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from web.backend_client import CarrierStats
from web.charts import bar_chart, line_chart
from web.formatting import minutes, thousands
from web.forms import MONTHS, DashboardForm, options
from web.views import backend

bp = Blueprint("dashboard", __name__)


def headline(stats: list[CarrierStats]) -> dict[str, Any]:
    """Totals over all carriers: flights, cancelled, mean arrival delay (minutes), on-time share.

    The per-carrier means and shares are combined weighted by each carrier's ``arrived``
    (flights with a known arrival delay, their base), so the totals are exact.
    """
    total = sum(s.flights for s in stats)
    cancelled = sum(s.cancelled for s in stats)

    def weighted(figure: Callable[[CarrierStats], float | None]) -> float | None:
        pairs = [(value, s.arrived) for s in stats if (value := figure(s)) is not None]
        weight = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / weight if weight > 0 else None

    return {
        "flights": total,
        "cancelled": cancelled,
        "cancelled_share": cancelled / total if total else None,
        "mean_arr_delay": weighted(lambda s: s.mean_arr_delay),
        "on_time_share": weighted(lambda s: s.on_time_share),
    }


class DashboardCache:
    """Per-worker, per-filter cache of the dashboard's data, ``seconds`` long (0 = off)."""

    def __init__(self, seconds: float, maxsize: int = 64) -> None:
        self.seconds = seconds
        self._entries: TTLCache[tuple[str | None, int | None], dict[str, Any]] | None = (
            TTLCache(maxsize=maxsize, ttl=seconds) if seconds > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, origin: str | None, month: int | None) -> dict[str, Any]:
        if self._entries is None:
            return dashboard_data(origin, month)
        key = (origin, month)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None:
            return hit
        data = dashboard_data(origin, month)  # raises on backend failure: never cached
        with self._lock:
            self._entries[key] = data
        return data


def _cache() -> DashboardCache:
    cache: DashboardCache | None = current_app.extensions.get("dashboard_cache")
    if cache is None:
        seconds = current_app.extensions["settings"].DASHBOARD_CACHE_SECONDS
        cache = current_app.extensions.setdefault("dashboard_cache", DashboardCache(seconds))
    return cache


@bp.get("/")
def index() -> ResponseReturnValue:
    """Render the dashboard. Backend failures surface as the 503/502 error pages."""
    client = backend()
    form = DashboardForm(request.args)
    origins = client.airports("origin")
    form.origin.choices = options([("", "All airports"), *((a.faa, a.faa) for a in origins)])

    origin: str | None = None
    month: int | None = None
    if form.validate():
        origin = form.origin.data or None
        month = int(form.month.data) if form.month.data else None

    data = _cache().get(origin, month)
    return render_template("dashboard.html", form=form, scope=data["scope"], data_html=data["html"])


def dashboard_data(origin: str | None, month: int | None) -> dict[str, Any]:
    """The dashboard's data part for these filters, rendered (``html``), and its ``scope``.

    The same for every visitor: no request or user state goes into it."""
    client = backend()
    stats = client.carrier_stats(origin=origin, month=month)
    daily = client.daily_stats(origin=origin)

    delay_chart = bar_chart(
        [
            (s.carrier, f"{s.name} ({s.carrier})" if s.name else s.carrier, s.mean_arr_delay)
            for s in stats
        ]
    )
    series = [(d.date, float(d.flights)) for d in daily]
    daily_chart = line_chart(series, highlight_month=month)

    known = sorted(
        ((s.mean_arr_delay, s) for s in stats if s.mean_arr_delay is not None),
        key=lambda pair: pair[0],
    )
    delay_summary = f"Bar chart of mean arrival delay for {len(known)} carriers."
    if known:
        delay_summary += (
            f" Lowest {known[0][1].carrier} ({minutes(known[0][0])}),"
            f" highest {known[-1][1].carrier} ({minutes(known[-1][0])})."
        )
    daily_summary = f"Area chart of flights per day over {daily_chart.points} days."
    if daily_chart.minimum and daily_chart.maximum:
        daily_summary += (
            f" Fewest {thousands(daily_chart.minimum[1])} on {daily_chart.minimum[0]},"
            f" most {thousands(daily_chart.maximum[1])} on {daily_chart.maximum[0]}."
        )

    scope = " · ".join(
        part
        for part in (
            f"from {origin}" if origin else "all New York airports",
            MONTHS[month - 1] if month else "all months",
        )
    )
    html = render_template(
        "_dashboard_data.html",
        month_name=MONTHS[month - 1] if month else None,
        figures=headline(stats),
        stats=stats,
        delay_chart=delay_chart,
        delay_summary=delay_summary,
        daily_summary=daily_summary,
        daily=daily,
        daily_chart=daily_chart,
    )
    # Our own template, rendered with autoescape: safe to embed as is.
    return {"scope": scope, "html": Markup(html)}  # nosec B704 # autoescaped
