"""The dashboard: two pages of delay charts, filtered by origin, month and year.

``/`` (overview): headline figures, delay by carrier and mean delay per day of the chosen year
(the selected month is shaded); backend ``/api/v1/stats/carriers`` and ``/daily``. ``/delays``
(delay patterns): delay by scheduled departure hour, at the busiest destinations and against
the weather at the origin; backend ``/api/v1/stats/hours``, ``/destinations``, ``/weather``
(and ``/daily`` for the years the data has). Two pages, not one, because every write empties
the backend's stats cache and a page's miss costs one aggregate per chart: five on one page
made ``GET /`` twice as slow under the load test's writes (docs/performance.md). Every chart
comes with its data as a table, and every bar, month and table row (but the 365 days) that
matches a flight search links to it (:func:`search_params`): the drill-down carries the
dashboard's origin and month (as the month's dates in the chosen year).

The year: the dashboard shows one year at a time, by default the one with the most flights (the
demo data is 2013; a flight dated 2014 must not stretch the daily chart over two years). A year
selector appears when the data spans more than one year.

Every worker keeps the rendered data part of each page (``_dashboard_data.html``,
``_patterns_data.html``: figures, charts, tables) for ``DASHBOARD_CACHE_SECONDS`` (default 5
s, at most 30 s) per filter combination, so under load most page views skip the backend calls,
the chart building and the rendering of the 365-row table (the biggest cost per page, see
docs/performance.md); a write shows once the backend has recomputed its aggregates in the
background (within ``STATS_REFRESH_SECONDS``, backend/api/db/cache.py) plus at most that.
Only what is the same for every visitor is kept: the rest of the page (form, flash
messages, anything per user) is rendered per request.
"""

from __future__ import annotations

import calendar
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlencode

from cachetools import TTLCache
from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from web.backend_client import CarrierStats, WeatherBandStats
from web.charts import bar_chart, line_chart
from web.formatting import minutes
from web.forms import MONTHS, DashboardForm, options
from web.views import backend

bp = Blueprint("dashboard", __name__)
T = TypeVar("T")

# Destinations charted: the busiest ones (the demo data has 105).
TOP_DESTINATIONS = 15
# Longest name shown beside a bar (the full name is in its tooltip and the table).
MAX_LABEL_NAME = 18
# The search's order for drill-downs from delay charts: the worst arrival delays first.
WORST_FIRST = {"sort": "arr_delay", "order": "desc"}
# Arrivals later than this many minutes are late (on time: arr_delay <= 15, the API's rule).
LATE_FROM_MINUTES = 16
EN_DASH = "\u2013"  # ranges: 1\u20133 mi
# How each weather measure is named and measured (docs/api.md, /stats/weather).
WEATHER_MEASURES = {"precip": ("Precipitation", "in"), "visib": ("Visibility", "mi"),
                    "wind_speed": ("Wind", "mph")}  # fmt: skip


def headline(stats: list[CarrierStats]) -> dict[str, Any]:
    """Totals over all carriers: flights, cancelled, mean arrival delay (minutes), on-time share.

    The per-carrier means and shares are combined weighted by each carrier's ``arrived``
    (flights with a known arrival delay, their base), so the totals are exact up to the
    rounding of the per-carrier figures (0.1 min, 0.001; docs/api.md).
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


def scope_dates(year: int | None, month: int | None) -> dict[str, str]:
    """The search's ``date_from``/``date_to`` for the dashboard's scope: the month of that
    year, or the whole year; nothing without a year."""
    if year is None:
        return {}
    if month is None:
        return {"date_from": f"{year}-01-01", "date_to": f"{year}-12-31"}
    last = calendar.monthrange(year, month)[1]
    return {"date_from": f"{year}-{month:02d}-01", "date_to": f"{year}-{month:02d}-{last:02d}"}


def search_params(
    origin: str | None, year: int | None, month: int | None, **filters: str | int
) -> dict[str, str]:
    """The flight search's query parameters (web/views/flights.py) for the dashboard's scope
    plus ``filters`` (``carrier``, ``dest``, ``hour``, ``cancelled``, ``min_arr_delay``,
    ``sort``/``order``, or ``date_from``/``date_to`` replacing the scope's dates)."""
    params: dict[str, str] = {"origin": origin} if origin else {}
    params.update(scope_dates(year, month))
    params.update({k: str(v) for k, v in filters.items()})
    return params


def short_name(name: str | None) -> str | None:
    """A carrier's or airport's name without its legal suffix, cut to ``MAX_LABEL_NAME``."""
    if not name:
        return None
    name = re.sub(r",?\s+(Inc\.|Co\.|Corp\.|Corporation)$", "", name)
    return name if len(name) <= MAX_LABEL_NAME else name[: MAX_LABEL_NAME - 1].rstrip() + "…"


def by_delay_worst_first(rows: Sequence[T], key: str = "mean_arr_delay") -> list[T]:
    """Rows (answer models) ordered by their ``key`` (a mean delay), largest first; rows
    without one last."""
    known = [(value, r) for r in rows if (value := getattr(r, key)) is not None]
    known.sort(key=lambda pair: -pair[0])
    return [r for _, r in known] + [r for r in rows if getattr(r, key) is None]


def weather_label(band: WeatherBandStats) -> str:
    """``"Visibility 1-3 mi"`` (an en dash), ``"Wind ≥ 30 mph"``, ``"Precipitation none"``."""
    name, unit = WEATHER_MEASURES[band.measure]
    if band.measure == "precip" and band.lower == 0:
        return f"{name} none"
    if band.upper is None:
        return f"{name} ≥ {band.lower:g} {unit}"
    if band.lower == 0:
        return f"{name} < {band.upper:g} {unit}"
    return f"{name} {band.lower:g}{EN_DASH}{band.upper:g} {unit}"


def choose_year(days: Sequence[date], requested: int | None) -> tuple[int | None, list[int]]:
    """The year to show and the years the data has: ``requested`` if the data has it, else
    the year with the most days of flights (ties: the latest)."""
    counts = Counter(d.year for d in days)
    years = sorted(counts)
    if requested in counts:
        return requested, years
    if not counts:
        return None, years
    return max(years, key=lambda y: (counts[y], y)), years


DashboardKey = tuple[str | None, int | None, int | None]  # (origin, month, year)


class DashboardCache:
    """Per-worker, per-filter cache of the dashboard's data, ``seconds`` long (0 = off).

    One computation per filter combination at a time: when an entry expires under load, the
    worker's other threads wait for the one that recomputes it (five backend calls and a
    render) instead of all doing the same work at once. A failure is never cached; the next
    thread then tries itself, within its own page budget."""

    def __init__(
        self,
        seconds: float,
        maxsize: int = 64,
        compute: Callable[[str | None, int | None, int | None], dict[str, Any]] | None = None,
    ) -> None:
        self.seconds = seconds
        self._compute = compute or dashboard_data
        self._entries: TTLCache[DashboardKey, dict[str, Any]] | None
        self._entries = TTLCache(maxsize=maxsize, ttl=seconds) if seconds > 0 else None
        self._lock = threading.Lock()
        self._computing: dict[DashboardKey, threading.Lock] = {}

    def get(self, origin: str | None, month: int | None, year: int | None) -> dict[str, Any]:
        if self._entries is None:
            return self._compute(origin, month, year)
        key = (origin, month, year)
        with self._lock:
            hit = self._entries.get(key)
            computing = self._computing.setdefault(key, threading.Lock())
        if hit is not None:
            return hit
        with computing:
            with self._lock:
                hit = self._entries.get(key)  # another thread may have just computed it
            if hit is not None:
                return hit
            data = self._compute(origin, month, year)  # raises on backend failure
            with self._lock:
                self._entries[key] = data
            return data


def _cache(name: str, compute: Callable[[str | None, int | None, int | None], dict[str, Any]]
           ) -> DashboardCache:  # fmt: skip
    """The worker's cache of one dashboard page's data (``name``), made on first use."""
    key = f"dashboard_cache.{name}"
    cache: DashboardCache | None = current_app.extensions.get(key)
    if cache is None:
        seconds = current_app.extensions["settings"].DASHBOARD_CACHE_SECONDS
        cache = current_app.extensions.setdefault(key, DashboardCache(seconds, compute=compute))
    return cache


def _render(
    name: str,
    title: str,
    compute: Callable[[str | None, int | None, int | None], dict[str, Any]],
) -> ResponseReturnValue:
    """One dashboard page (``name`` = its endpoint in this blueprint): the filter form, and
    the data part ``compute`` renders for the filters (kept per worker, :class:`DashboardCache`).
    Backend failures surface as the 503/502 error pages."""
    client = backend()
    form = DashboardForm(request.args)
    origins = client.airports("origin")
    form.origin.choices = options([("", "All airports"), *((a.faa, a.faa) for a in origins)])

    origin: str | None = None
    month: int | None = None
    year: int | None = None
    if form.validate():
        origin = form.origin.data or None
        month = int(form.month.data) if form.month.data else None
        year = int(form.year.data) if form.year.data else None

    data = _cache(name, compute).get(origin, month, year)
    form.year.choices = options((str(y), str(y)) for y in data["years"])
    form.year.data = str(data["year"]) if data["year"] else ""
    unknown_year = year is not None and year != data["year"]
    # The other page with the same filters (the links between the two pages keep them).
    filters = urlencode(
        [(k, v) for k, v in (("origin", origin), ("month", month), ("year", year)) if v]
    )
    query = f"?{filters}" if filters else ""
    return render_template(
        "dashboard.html",
        page_name=name,
        title=title,
        form=form,
        scope=data["scope"],
        data_html=data["html"],
        several_years=len(data["years"]) > 1,
        unknown_filter=bool(form.errors) or unknown_year,
        overview_href=url_for("dashboard.index") + query,
        patterns_href=url_for("dashboard.patterns") + query,
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    """The overview: headline figures, delay by carrier, mean delay per day."""
    return _render("index", "Flight delays", dashboard_data)


@bp.get("/delays")
def patterns() -> ResponseReturnValue:
    """Delay patterns: by scheduled departure hour, destination and weather at the origin."""
    return _render("patterns", "Delay patterns", patterns_data)


def _scope(origin: str | None, month: int | None, year: int | None) -> dict[str, Any]:
    """What both pages' data start from: the ``year`` shown (:func:`choose_year`), the
    ``years`` the data has, that year's ``daily`` stats, the ``scope`` text and ``link``, a
    function of search filters giving the drill-down URL within the scope."""
    daily_all = backend().daily_stats(origin=origin)
    year, years = choose_year([d.date for d in daily_all], year)
    base = url_for("flights.search")

    def link(**filters: str | int) -> str:
        return f"{base}?{urlencode(search_params(origin, year, month, **filters))}"

    scope = " · ".join(
        part
        for part in (
            f"from {origin}" if origin else "all New York airports",
            MONTHS[month - 1] if month else "all months",
            str(year) if year else "",
        )
        if part
    )
    daily = [d for d in daily_all if d.date.year == year]
    return {"year": year, "years": years, "daily": daily, "scope": scope, "link": link}


def dashboard_data(origin: str | None, month: int | None, year: int | None) -> dict[str, Any]:
    """The overview's data part for these filters, rendered (``html``), its ``scope`` text,
    the ``year`` shown and the ``years`` the data has.

    The same for every visitor: no request or user state goes into it."""
    scoped = _scope(origin, month, year)
    year, daily, link = scoped["year"], scoped["daily"], scoped["link"]
    stats = backend().carrier_stats(origin=origin, month=month, year=year)

    # Carriers: names with their codes, worst mean arrival delay first.
    carriers: list[dict[str, Any]] = [
        {
            **s.model_dump(),
            "label": f"{short_name(s.name) or s.carrier} ({s.carrier})",
            "href": link(carrier=s.carrier, **WORST_FIRST),
            "cancelled_href": link(carrier=s.carrier, cancelled="true"),
            "late_href": link(carrier=s.carrier, min_arr_delay=LATE_FROM_MINUTES, **WORST_FIRST),
        }
        for s in by_delay_worst_first(stats)
    ]
    delay_chart = bar_chart(
        [(s["label"], s["name"] or s["carrier"], s["mean_arr_delay"]) for s in carriers],
        width=560, label_width=250, hrefs=[s["href"] for s in carriers],
    )  # fmt: skip

    # Daily mean arrival delay over the chosen year; each month of the chart links to its
    # search. The 365-row table has no links (they were a quarter of the page's bytes: it is
    # the page's largest part, docs/performance.md).
    series = [(d.date, d.mean_arr_delay) for d in daily if d.mean_arr_delay is not None]
    month_hrefs = {}
    if year is not None:
        base = url_for("flights.search")
        for m in range(1, 13):
            month_hrefs[m] = f"{base}?{urlencode(search_params(origin, year, m, **WORST_FIRST))}"
    daily_chart = line_chart(series, highlight_month=month, year=year, month_hrefs=month_hrefs)
    html = render_template(
        "_dashboard_data.html",
        month_name=MONTHS[month - 1] if month else None,
        year=year,
        figures=headline(stats),
        cancelled_href=link(cancelled="true"),
        late_href=link(min_arr_delay=LATE_FROM_MINUTES, **WORST_FIRST),
        stats=carriers,
        delay_chart=delay_chart,
        delay_summary=bar_summary(
            "mean arrival delay", "carriers", [(s["label"], s["mean_arr_delay"]) for s in carriers]
        ),
        daily=daily,
        daily_chart=daily_chart,
        daily_summary=daily_summary(daily_chart.points, daily_chart.minimum, daily_chart.maximum),
    )
    # Our own template, rendered with autoescape: safe to embed as is.
    part = Markup(html)  # nosec B704
    return {"scope": scoped["scope"], "html": part, "year": year, "years": scoped["years"]}


def patterns_data(origin: str | None, month: int | None, year: int | None) -> dict[str, Any]:
    """The delay patterns page's data part for these filters (the keys of
    :func:`dashboard_data`): delay by hour, at the busiest destinations, by weather band.

    The same for every visitor: no request or user state goes into it."""
    scoped = _scope(origin, month, year)
    year, link = scoped["year"], scoped["link"]
    client = backend()
    hours = client.hour_stats(origin=origin, month=month, year=year)
    destinations = client.destination_stats(
        origin=origin, month=month, year=year, limit=TOP_DESTINATIONS
    )
    weather = client.weather_stats(origin=origin, month=month, year=year)

    hour_rows: list[dict[str, Any]] = [
        {"stat": h, "label": f"{h.hour:02d}:00", "href": link(hour=h.hour, **WORST_FIRST)}
        for h in hours
    ]
    hour_chart = bar_chart(
        [(r["label"], f"Departures {r['label']}{EN_DASH}{r['stat'].hour:02d}:59",
          r["stat"].mean_arr_delay) for r in hour_rows],
        width=560, label_width=60, row_height=20, hrefs=[r["href"] for r in hour_rows],
    )  # fmt: skip

    dest_rows: list[dict[str, Any]] = [
        {"stat": d, "label": f"{short_name(d.name)} ({d.dest})" if d.name else d.dest,
         "href": link(dest=d.dest, **WORST_FIRST)}
        for d in by_delay_worst_first(destinations)
    ]  # fmt: skip
    dest_chart = bar_chart(
        [(r["label"], r["stat"].name or r["stat"].dest, r["stat"].mean_arr_delay)
         for r in dest_rows],
        width=560, label_width=250, hrefs=[r["href"] for r in dest_rows],
    )  # fmt: skip

    weather_rows: list[dict[str, Any]] = [{"stat": b, "label": weather_label(b)} for b in weather]
    weather_chart = bar_chart(
        [(r["label"], r["label"], r["stat"].mean_dep_delay) for r in weather_rows],
        width=560, label_width=250,
    )  # fmt: skip

    html = render_template(
        "_patterns_data.html",
        hours=hour_rows,
        hour_chart=hour_chart,
        hour_summary=bar_summary(
            "mean arrival delay",
            "scheduled departure hours",
            [(r["label"], r["stat"].mean_arr_delay) for r in hour_rows],
        ),
        destinations=dest_rows,
        dest_chart=dest_chart,
        dest_summary=bar_summary(
            "mean arrival delay",
            f"the {len(dest_rows)} busiest destinations",
            [(r["label"], r["stat"].mean_arr_delay) for r in dest_rows],
        ),
        weather=weather_rows,
        weather_chart=weather_chart,
        weather_summary=bar_summary(
            "mean departure delay",
            "bands of weather at the origin",
            [(r["label"], r["stat"].mean_dep_delay) for r in weather_rows],
        ),
    )
    # Our own template, rendered with autoescape: safe to embed as is.
    part = Markup(html)  # nosec B704
    return {"scope": scoped["scope"], "html": part, "year": year, "years": scoped["years"]}


def bar_summary(what: str, of: str, rows: Sequence[tuple[str, float | None]]) -> str:
    """A bar chart's text summary (its SVG description): how many bars, the highest and the
    lowest value with their labels."""
    known = sorted(((label, v) for label, v in rows if v is not None), key=lambda r: r[1])
    text = f"Bar chart of {what} for {len(known)} {of}."
    if known:
        text += (
            f" Highest {known[-1][0]} ({minutes(known[-1][1])}),"
            f" lowest {known[0][0]} ({minutes(known[0][1])})."
        )
    return text


def daily_summary(
    points: int, lowest: tuple[str, float] | None, highest: tuple[str, float] | None
) -> str:
    """The daily chart's text summary: days charted, the best and the worst day."""
    text = f"Line chart of the mean arrival delay per day over {points} days."
    if lowest and highest:
        text += (
            f" Best {lowest[0]} ({minutes(lowest[1])}), worst {highest[0]} ({minutes(highest[1])})."
        )
    return text
