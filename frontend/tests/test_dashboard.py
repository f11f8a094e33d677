"""The dashboard's charts, tables and drill-down links (against the stdlib fake backend, real
HTTP), and the answer types of the stats endpoints it reads."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fake_backend import DAILY, DESTINATIONS, HOURS, FakeBackend
from web.backend_client import BackendClient, BackendUnavailable, HourStats, WeatherBandStats
from web.charts import line_chart
from web.settings import Settings
from web.views.dashboard import choose_year, scope_dates, search_params, weather_label


def hrefs(page: str, section_id: str) -> list[str]:
    """The links of the chart whose figure caption has id ``section_id``-cap, in order."""
    start = page.index(f'id="{section_id}-cap"')
    end = page.index("</figure>", start)
    return [
        html.unescape(h) for h in re.findall(r'<a class="bar-link" href="([^"]+)"', page[start:end])
    ]


def query(href: str) -> dict[str, str]:
    parts = urlsplit(href)
    assert parts.path == "/flights"
    return {k: v[-1] for k, v in parse_qs(parts.query).items()}


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2013, 3, {"date_from": "2013-03-01", "date_to": "2013-03-31"}),
        (2016, 2, {"date_from": "2016-02-01", "date_to": "2016-02-29"}),  # leap year
        (2013, None, {"date_from": "2013-01-01", "date_to": "2013-12-31"}),
        (None, 5, {}),
    ],
)
def test_scope_dates(year: int | None, month: int | None, expected: dict[str, str]) -> None:
    assert scope_dates(year, month) == expected


def test_search_params_carry_the_scope_and_the_filter() -> None:
    assert search_params("LGA", 2013, 2, carrier="UA", hour=6) == {
        "origin": "LGA", "date_from": "2013-02-01", "date_to": "2013-02-28",
        "carrier": "UA", "hour": "6",
    }  # fmt: skip
    # A day's link replaces the scope's dates.
    day = search_params(None, 2013, None, date_from="2013-07-04", date_to="2013-07-04")
    assert day == {"date_from": "2013-07-04", "date_to": "2013-07-04"}


def test_choose_year_defaults_to_the_busiest_year() -> None:
    days = [date(2013, 1, 1) + timedelta(days=i) for i in range(365)] + [date(2014, 1, 5)]
    assert choose_year(days, None) == (2013, [2013, 2014])
    assert choose_year(days, 2014) == (2014, [2013, 2014])
    assert choose_year(days, 1999) == (2013, [2013, 2014])
    assert choose_year([], None) == (None, [])


def test_carriers_by_delay_worst_first_with_names_and_links(client: Any) -> None:
    page = client.get("/?origin=JFK&month=3").get_data(as_text=True)
    links = hrefs(page, "delay-by-carrier")
    # UA (3.558 min) is worse than AA (0.364): first, whatever the API's order by code.
    assert [query(h)["carrier"] for h in links] == ["UA", "AA"]
    assert "United Air Lines (UA)" in page and "American Airlines (AA)" in page
    assert query(links[0]) == {
        "origin": "JFK", "date_from": "2013-03-01", "date_to": "2013-03-31", "carrier": "UA",
        "sort": "arr_delay", "order": "desc",
    }  # fmt: skip
    assert 'role="group"' in page  # a chart of links is not one image


def test_delay_patterns_page_hour_and_destination_links(client: Any) -> None:
    page = client.get("/delays?origin=EWR").get_data(as_text=True)
    assert "<h1>Delay patterns" in page
    hours = [query(h) for h in hrefs(page, "delay-by-hour")]
    assert [int(q["hour"]) for q in hours] == [h["hour"] for h in HOURS]
    assert all(q["origin"] == "EWR" and q["date_from"] == "2013-01-01" for q in hours)
    dests = [query(h)["dest"] for h in hrefs(page, "delay-by-destination")]
    assert dests == ["BQN", "ORD"]  # worst first: 8.2 before 5.9
    # BQN is absent from airports: its code alone is its label.
    assert re.search(r'<text class="row-label"[^>]*>BQN</text>', page)
    assert "Chicago Ohare Intl (ORD)" in page
    assert 'id="delay-by-weather-cap"' in page and "Delay by the weather" in page
    # Its filter form submits to itself; the overview link keeps the filters.
    assert 'action="/delays"' in page
    assert '<a href="/?origin=EWR" >Overview</a>' in page


def test_the_overview_asks_only_for_its_own_aggregates(
    client: Any, fake_backend: FakeBackend
) -> None:
    page = client.get("/?origin=EWR&month=2").get_data(as_text=True)
    asked = {p for _, p, _ in fake_backend.requests}
    assert {"/api/v1/stats/carriers", "/api/v1/stats/daily"} <= asked
    assert not asked & {"/api/v1/stats/hours", "/api/v1/stats/destinations",
                        "/api/v1/stats/weather"}  # fmt: skip
    assert 'id="delay-by-hour-cap"' not in page
    # Linked both ways: the main navigation and the page's own, with the same filters.
    assert 'href="/delays?origin=EWR&amp;month=2"' in page
    assert page.count('href="/delays') >= 2


def test_overview_table_links(client: Any) -> None:
    page = client.get("/?origin=EWR").get_data(as_text=True)
    # The day table has no links (the chart's months do); a carrier's figures link.
    assert len(re.findall(r'<th scope="row">2013-\d\d-\d\d</th>', page)) == len(DAILY)
    assert not re.search(r'<a href="[^"]*date_to=2013-01-01"', page)
    cancelled = [
        query(html.unescape(h)) for h in re.findall(r'href="([^"]+cancelled=true[^"]*)"', page)
    ]
    assert {"origin": "EWR", "date_from": "2013-01-01", "date_to": "2013-12-31",
            "cancelled": "true"} in cancelled  # fmt: skip
    assert any(q.get("carrier") == "UA" and q["cancelled"] == "true" for q in cancelled)
    late = [query(html.unescape(h)) for h in re.findall(r'href="([^"]+min_arr_delay=[^"]*)"', page)]
    assert late and all(q["min_arr_delay"] == "16" for q in late)


def test_a_drill_down_link_opens_the_matching_search(
    client: Any, fake_backend: FakeBackend
) -> None:
    page = client.get("/?origin=JFK&month=3").get_data(as_text=True)
    ua = hrefs(page, "delay-by-carrier")[0]
    response = client.get(ua)
    assert response.status_code == 200
    sent = [q for m, p, q in fake_backend.requests if p == "/api/v1/flights"][-1]
    assert {k: sent[k] for k in ("origin", "carrier", "date_from", "date_to")} == {
        "origin": "JFK",
        "carrier": "UA",
        "date_from": "2013-03-01",
        "date_to": "2013-03-31",
    }


def test_the_daily_chart_keeps_to_one_year(client: Any, fake_backend: FakeBackend) -> None:
    fake_backend.daily.append(
        {"date": "2014-01-05", "flights": 1, "mean_dep_delay": 3.0, "mean_arr_delay": 200.0}
    )
    page = client.get("/").get_data(as_text=True)
    assert "· 2013" in page and 'name="year"' in page  # several years: a selector
    assert "2014-01-05" not in page and "200.0 min" not in page
    month_links = re.findall(r'<a class="month-link" href="([^"]+)"', page)
    assert len(month_links) == 12
    assert query(html.unescape(month_links[11]))["date_to"] == "2013-12-31"
    page = client.get("/?year=2014").get_data(as_text=True)
    assert "2014-01-05" in page and "· 2014" in page
    assert ("GET", "/api/v1/stats/carriers", {"year": "2014"}) in fake_backend.requests


def test_one_year_of_data_shows_no_year_selector(client: Any) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'name="year"' not in page


def test_line_chart_spans_the_year_whatever_the_series() -> None:
    start = date(2013, 1, 1)
    series = [(start + timedelta(days=i), float(i % 40 - 15)) for i in range(0, 365, 2)]
    chart = line_chart([*series, (date(2014, 1, 5), 999.0)], year=2013, month_hrefs={1: "/j"})
    assert [t.label for t in chart.x_ticks][-1] == "Dec"
    assert len(chart.x_ticks) == 12
    assert chart.x_ticks[-1].pos < chart.plot_right - 20  # room for its label: not cut off
    assert chart.y_ticks[0].label.startswith("-") and chart.maximum is not None
    assert chart.maximum[1] < 999  # the 2014 day is not charted
    assert chart.plot_top <= chart.zero_y <= chart.plot_bottom
    assert [m.href for m in chart.months][:2] == ["/j", None]
    # Every other day: no two days adjacent, so each is a dot, not a line over the gaps.
    assert len(chart.dots) == len(series) and chart.line_path == ""


def test_weather_labels() -> None:
    def band(measure: str, lower: float, upper: float | None) -> WeatherBandStats:
        return WeatherBandStats(measure=measure, lower=lower, upper=upper, flights=1,  # type: ignore[arg-type]
                               cancelled=0, cancelled_share=0.0, mean_dep_delay=1.0,
                               mean_arr_delay=1.0)  # fmt: skip

    assert weather_label(band("precip", 0.0, 0.01)) == "Precipitation none"
    assert weather_label(band("visib", 1.0, 3.0)) == "Visibility 1\u20133 mi"
    assert weather_label(band("visib", 0.0, 1.0)) == "Visibility < 1 mi"
    assert weather_label(band("wind_speed", 30.0, None)) == "Wind ≥ 30 mph"


def test_stats_answers_are_validated_models(fake_backend: FakeBackend) -> None:
    c = BackendClient(Settings(BACKEND_URL=fake_backend.url, BACKEND_READ_TIMEOUT_SECONDS=2.0))
    try:
        hours = c.hour_stats(origin="JFK", month=3, year=2013)
        assert hours[0] == HourStats(**HOURS[0])
        assert [d.dest for d in c.destination_stats(limit=5)] == [d["dest"] for d in DESTINATIONS]
        assert ("GET", "/api/v1/stats/destinations", {"limit": "5"}) in fake_backend.requests
        assert c.weather_stats()[1].upper is None
        fake_backend.hours = [{**HOURS[0], "flights": "many"}]
        with pytest.raises(BackendUnavailable, match=r"malformed HourStatsList"):
            c.hour_stats()
        fake_backend.hours = [{"hour": 5}]  # fields missing
        with pytest.raises(BackendUnavailable):
            c.hour_stats()
    finally:
        c.close()


def test_a_malformed_stats_answer_is_the_503_page(client: Any, fake_backend: FakeBackend) -> None:
    fake_backend.hours = [{"hour": "noon"}]
    response = client.get("/delays")
    assert response.status_code == 503
    assert "Traceback" not in response.get_data(as_text=True)


def test_the_cache_computes_a_filter_combination_once_at_a_time() -> None:
    import threading
    import time

    from web.views.dashboard import DashboardCache

    calls: list[tuple[Any, ...]] = []

    def compute(*key: Any) -> dict[str, Any]:
        calls.append(key)
        time.sleep(0.2)
        return {"key": key}

    cache = DashboardCache(5.0, compute=compute)
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("JFK", 3, 2013))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert calls == [("JFK", 3, 2013)]  # eight pages, one computation
    assert results == [{"key": ("JFK", 3, 2013)}] * 8
    cache.get("JFK", 4, 2013)
    assert len(calls) == 2  # another combination: its own computation

    def failing(*key: Any) -> dict[str, Any]:
        calls.append(key)
        raise BackendUnavailable("down")

    broken = DashboardCache(5.0, compute=failing)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            broken.get(None, None, None)
    assert calls[-2:] == [(None, None, None)] * 2  # a failure is never kept


@pytest.mark.parametrize("path", ["/", "/delays"])
def test_both_pages_say_the_figures_can_lag_a_change(client: Any, path: str) -> None:
    """The backend recomputes the aggregates in the background after writes (at most once
    per STATS_REFRESH_SECONDS): the page says the figures may lag."""
    page = client.get(path).get_data(as_text=True)
    assert 'class="freshness"' in page and "can lag a change" in page
