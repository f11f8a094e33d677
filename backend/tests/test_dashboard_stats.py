"""The dashboard's aggregates (/api/v1/stats/hours, /destinations, /weather, the year scope and
the rounding of every stats answer), each checked against the same figure computed in Python
from the raw rows of the demo database (not against numbers written down here)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import AUTH, ReadyTestClient, copy_db, eventually, make_settings, new_flight

FLIGHT_COLUMNS = "origin, month, year, day, hour, dest, carrier, dep_time, dep_delay, arr_delay"


@pytest.fixture(scope="module")
def raw(template_db: Path) -> Iterator[dict[str, Any]]:
    """The raw rows: flights as dicts, weather keyed by (origin, time_hour), airport names."""
    with duckdb.connect(str(template_db), read_only=True) as con:
        cols = [c.strip() for c in FLIGHT_COLUMNS.split(",")]
        query = f"SELECT {FLIGHT_COLUMNS}, time_hour FROM flights"
        flights = [
            dict(zip([*cols, "time_hour"], row, strict=True))
            for row in con.execute(query).fetchall()
        ]
        weather = {
            (o, t): (p, v, w)
            for o, t, p, v, w in con.execute(
                "SELECT origin, time_hour, precip, visib, wind_speed FROM weather"
            ).fetchall()
        }
        names = dict(con.execute("SELECT faa, name FROM airports").fetchall())
        airlines = dict(con.execute("SELECT carrier, name FROM airlines").fetchall())
    yield {"flights": flights, "weather": weather, "names": names, "airlines": airlines}


def mean(values: list[int]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures every stats answer computes, from raw rows, rounded as the API promises."""
    arr = [r["arr_delay"] for r in rows if r["arr_delay"] is not None]
    return {
        "flights": len(rows),
        "cancelled": sum(r["dep_time"] is None for r in rows),
        "arrived": len(arr),
        "mean_dep_delay": mean([r["dep_delay"] for r in rows if r["dep_delay"] is not None]),
        "mean_arr_delay": mean(arr),
        "on_time_share": share(sum(d <= 15 for d in arr), len(arr)),
    }


def grouped(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    return groups


def daily_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The daily answer's rows (date order) computed from raw rows."""
    dated = [{**r, "date": f"{r['year']}-{r['month']:02d}-{r['day']:02d}"} for r in rows]
    expected = []
    for day, group in sorted(grouped(dated, "date").items()):
        fig = figures(group)
        expected.append({"date": day, "flights": fig["flights"],
                         "mean_dep_delay": fig["mean_dep_delay"],
                         "mean_arr_delay": fig["mean_arr_delay"]})  # fmt: skip
    return expected


def get(client: TestClient, path: str, **params: object) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/stats/{path}", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("scope", [{}, {"origin": "LGA", "month": 2}, {"year": 2013}])
def test_hours_are_the_figures_of_the_raw_rows(
    client: TestClient, raw: dict[str, Any], scope: dict[str, Any]
) -> None:
    rows = [f for f in raw["flights"] if all(f[k] == v for k, v in scope.items())]
    expected = [
        {"hour": hour, **figures(group)} for hour, group in sorted(grouped(rows, "hour").items())
    ]
    assert get(client, "hours", **scope) == expected
    assert len(expected) > 15


@pytest.mark.parametrize(
    "scope", [{}, {"origin": "LGA", "month": 2}, {"origin": "JFK"}, {"month": 7}, {"year": 2013}]
)
def test_carriers_are_the_figures_of_the_raw_rows(
    client: TestClient, raw: dict[str, Any], scope: dict[str, Any]
) -> None:
    """Every filter combination's carriers come from one CUBE statement per year: each row,
    the p95 included, is the figure of that combination's raw rows (quantile_cont: linear
    interpolation between the closest ranks, Python's "inclusive" method; the last tenth of
    a p95 may round the other way)."""
    rows = [f for f in raw["flights"] if all(f[k] == v for k, v in scope.items())]
    expected = []
    for carrier, group in sorted(grouped(rows, "carrier").items()):
        fig = figures(group)
        arr = [r["arr_delay"] for r in group if r["arr_delay"] is not None]
        p95 = statistics.quantiles(arr, n=20, method="inclusive")[18] if len(arr) > 1 else None
        expected.append({
            "carrier": carrier, "name": raw["airlines"].get(carrier),
            "flights": fig["flights"], "cancelled": fig["cancelled"], "arrived": fig["arrived"],
            "mean_arr_delay": fig["mean_arr_delay"],
            # round() of a float a hair either side of x.x5 may differ by the last tenth.
            "p95_arr_delay": None if p95 is None else pytest.approx(p95, abs=0.051),
            "on_time_share": fig["on_time_share"],
        })  # fmt: skip
    assert get(client, "carriers", **scope) == expected
    assert len(expected) > 5


def test_destinations_are_the_busiest_with_names_where_known(
    client: TestClient, raw: dict[str, Any]
) -> None:
    rows = [f for f in raw["flights"] if f["origin"] == "JFK"]
    groups = sorted(grouped(rows, "dest").items(), key=lambda kv: (-len(kv[1]), kv[0]))
    want = []
    for dest, group in groups:
        row = {"dest": dest, "name": raw["names"].get(dest), **figures(group)}
        del row["mean_dep_delay"]
        want.append(row)
    assert get(client, "destinations", origin="JFK", limit=12) == want[:12]
    everything = get(client, "destinations", limit=200)
    assert len(everything) == len({f["dest"] for f in raw["flights"]})
    unnamed = [d for d in everything if d["name"] is None]
    assert unnamed and all(d["dest"] not in raw["names"] for d in unnamed)  # e.g. BQN, SJU


def band(measure: str, value: float | None) -> tuple[float, float | None] | None:
    cuts = {"precip": [0.0, 0.01, 0.1, 0.3], "visib": [0.0, 1.0, 3.0, 5.0, 10.0],
            "wind_speed": [0.0, 10.0, 20.0, 30.0]}[measure]  # fmt: skip
    if value is None or (measure == "wind_speed" and value > 100):
        return None
    lower = max(c for c in cuts if c <= value)
    upper = next((c for c in cuts if c > lower), None)
    return lower, upper


@pytest.mark.parametrize("scope", [{}, {"origin": "EWR", "month": 12}])
def test_weather_bands_are_the_figures_of_the_joined_raw_rows(
    client: TestClient, raw: dict[str, Any], scope: dict[str, Any]
) -> None:
    groups: dict[tuple[str, float, float | None], list[dict[str, Any]]] = defaultdict(list)
    for f in raw["flights"]:
        if not all(f[k] == v for k, v in scope.items()):
            continue
        reading = raw["weather"].get((f["origin"], f["time_hour"]))
        if reading is None:
            continue
        for measure, value in zip(("precip", "visib", "wind_speed"), reading, strict=True):
            cut = band(measure, value)
            if cut is not None:
                groups[(measure, *cut)].append(f)
    expected = []
    for (measure, lower, upper), group in sorted(groups.items(), key=lambda kv: kv[0][:2]):
        fig = figures(group)
        expected.append(
            {"measure": measure, "lower": lower, "upper": upper, "flights": fig["flights"],
             "cancelled": fig["cancelled"], "cancelled_share": share(fig["cancelled"], len(group)),
             "mean_dep_delay": fig["mean_dep_delay"], "mean_arr_delay": fig["mean_arr_delay"]}
        )  # fmt: skip
    assert get(client, "weather", **scope) == expected
    if not scope:
        assert len(expected) == 13  # every band has flights over the whole data
        heavy = next(e for e in expected if e["measure"] == "precip" and e["upper"] is None)
        dry = next(e for e in expected if e["measure"] == "precip" and e["lower"] == 0)
        assert heavy["mean_dep_delay"] > dry["mean_dep_delay"]  # what the chart is for


def test_every_delay_is_rounded_to_a_tenth_and_every_share_to_a_thousandth(
    client: TestClient,
) -> None:
    answers = [get(client, p) for p in ("carriers", "daily", "hours", "destinations", "weather")]
    checked = 0
    for items in answers:
        for item in items:
            for key, value in item.items():
                if value is None or not isinstance(value, float) or key in ("lower", "upper"):
                    continue
                digits = 3 if key.endswith("_share") else 1
                assert value == round(value, digits), (key, value)
                checked += 1
    assert checked > 800
    ua = next(i for i in answers[0] if i["carrier"] == "UA")
    assert len(repr(ua["p95_arr_delay"])) <= 6


def test_daily_has_both_mean_delays(client: TestClient, raw: dict[str, Any]) -> None:
    expected = daily_rows([f for f in raw["flights"] if f["origin"] == "JFK"])
    assert get(client, "daily", origin="JFK") == expected
    assert len(expected) == 365


def test_the_year_scope_keeps_a_flight_of_another_year_apart(
    template_db: Path, tmp_path: Path
) -> None:
    # The API refuses flights outside 2013 (FIRST_YEAR/LAST_YEAR, docs/api.md), but a
    # template user's data may span years: one 2013-03-02 09:xx JFK->LAX flight is moved to
    # 2014 in the file before the app opens it.
    path = copy_db(template_db, tmp_path)
    with duckdb.connect(str(path)) as con:
        moved = con.execute(
            "UPDATE flights SET year = 2014, time_hour = time_hour + INTERVAL 1 YEAR"
            " WHERE id = (SELECT min(id) FROM flights WHERE year = 2013 AND month = 3"
            " AND day = 2 AND hour = 9 AND origin = 'JFK' AND dest = 'LAX')"
        ).fetchone()
        assert moved == (1,)
    with ReadyTestClient(create_app(make_settings(path)), headers=AUTH) as writable_client:
        check_the_year_scope(writable_client)


def check_the_year_scope(writable_client: TestClient) -> None:
    all_years = sum(i["flights"] for i in get(writable_client, "carriers"))
    in_2013 = sum(i["flights"] for i in get(writable_client, "carriers", year=2013))
    in_2014 = get(writable_client, "hours", year=2014)
    assert all_years == in_2013 + 1
    assert [(h["hour"], h["flights"]) for h in in_2014] == [(9, 1)]
    daily = get(writable_client, "daily", year=2014)
    assert [d["date"] for d in daily] == ["2014-03-02"]
    assert get(writable_client, "weather", year=2014) == []  # no weather readings in 2014
    assert get(writable_client, "destinations", year=2014)[0]["dest"] == "LAX"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("hours", {"month": 13}, "month"),
        ("weather", {"year": 1999}, "year"),
        ("destinations", {"limit": 0}, "limit"),
        ("destinations", {"limit": 201}, "limit"),
        ("carriers", {"year": "x"}, "year"),
    ],
)
def test_bad_scope_is_a_422_naming_the_field(
    client: TestClient, path: str, params: dict[str, Any], field: str
) -> None:
    response = client.get(f"/api/v1/stats/{path}", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]


def test_a_write_shows_once_the_background_recomputation_is_done(
    writable_client: TestClient,
) -> None:
    """After a write the figures from before it are served at once (no request waits for an
    aggregate) while one background statement per view recomputes them; then the new ones
    (api/db/cache.py, refresh_behind)."""

    def totals() -> tuple[int, int, int]:
        hours = {h["hour"]: h["flights"] for h in get(writable_client, "hours", origin="JFK")}
        dests = {d["dest"]: d["flights"] for d in get(writable_client, "destinations", limit=200)}
        weather = sum(
            w["flights"] for w in get(writable_client, "weather") if w["measure"] == "visib"
        )
        return hours[9], dests["LAX"], weather

    before = totals()
    assert totals() == before  # a repeated call: the kept answer, the same figures
    created = writable_client.post("/api/v1/flights", json=new_flight(sched_dep_time=930))
    assert created.status_code == 201, created.text
    # The first answers after the write start the recomputations and are the old figures.
    assert totals() == before
    # 2013-07-04 09:30 at JFK: hour 9, to LAX, in an hour with a weather reading.
    expected = (before[0] + 1, before[1] + 1, before[2] + 1)
    assert eventually(totals, lambda t: t == expected) == expected


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("hours", "stats_hours"),
        ("destinations", "stats_destinations"),
        ("weather", "stats_weather"),
    ],
)
def test_each_answer_is_one_named_query_then_reused(
    writable_client: TestClient, path: str, query: str
) -> None:
    """Telemetry contract: a miss runs exactly its named query (counted under its name in
    duckdb_query_duration_seconds), a repeat runs none."""
    from prometheus_client.parser import text_string_to_metric_families

    def count() -> float:
        text = writable_client.get("/metrics").text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "duckdb_query_duration_seconds_count" and s.labels.get("query") == query
        )

    before = count()
    get(writable_client, path, origin="LGA", month=5)
    assert count() == before + 1
    get(writable_client, path, origin="LGA", month=5)
    assert count() == before + 1


def test_every_kept_stats_statement_is_a_read() -> None:
    """Regression: stats_weather began with WITH, which run_query counts as a write (not a
    SELECT): every weather answer emptied the result cache and the dashboard recomputed all
    its aggregates on every page (make bench: 62.7 instead of ~400 pages/s)."""
    from api.db.queries import QUERIES
    from api.observability.database import operation_name

    stats = [name for name in QUERIES if name.startswith("stats_")]
    assert len(stats) == 5
    assert {name: operation_name(QUERIES[name]) for name in stats} == dict.fromkeys(stats, "SELECT")


def query_count(client: TestClient, query: str) -> float:
    """duckdb_query_duration_seconds_count of named query `query` (statements it ran)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "duckdb_query_duration_seconds_count" and s.labels.get("query") == query
    )


@pytest.mark.parametrize(
    ("path", "query", "second", "values"),
    [
        ("hours", "stats_hours", "month", (5, 11)),
        ("destinations", "stats_destinations", "month", (5, 11)),
        ("weather", "stats_weather", "month", (5, 11)),
        ("daily", "stats_daily", "carrier", ("UA", "B6")),
        ("carriers", "stats_carriers", "month", (5, 11)),
    ],
)
def test_one_statement_per_year_serves_every_filter_until_a_write(
    writable_client: TestClient, path: str, query: str, second: str, values: tuple[Any, Any]
) -> None:
    """The partials (api/routes/stats.py): the first answer of a year runs the view's
    statement, every other origin/month (carrier) of that year is derived without one, and
    so is the data's only year asked by name; a write makes ONE background statement
    recompute them, and the answers then count the new flight."""
    before = query_count(writable_client, query)
    first = get(writable_client, path, origin="LGA", **{second: values[0]})
    assert first and query_count(writable_client, query) == before + 1
    for scope in ({"origin": "EWR", second: values[1]}, {}, {"origin": "JFK"}, {"year": 2013}):
        assert get(writable_client, path, **scope)
    assert query_count(writable_client, query) == before + 1  # no statement for these

    def jfk() -> int:
        return sum(i["flights"] for i in get(writable_client, path, origin="JFK"))

    flights = jfk()
    created = writable_client.post("/api/v1/flights", json=new_flight(sched_dep_time=930))
    assert created.status_code == 201, created.text
    # destinations: the top 20 only; weather: one flight counts in each measure's band.
    added = {"destinations": 1, "weather": 3}.get(path, 1)
    assert eventually(jfk, lambda n: n == flights + added) == flights + added
    assert query_count(writable_client, query) == before + 2
    assert (
        get(writable_client, path, origin="LGA", **{second: values[0]}) == first
    )  # LGA: not the new flight
    assert get(writable_client, path, year=2013) == get(writable_client, path)
    assert query_count(writable_client, query) == before + 2


def test_an_answer_derived_after_a_write_is_the_figure_of_the_raw_rows(
    writable_client: TestClient, raw: dict[str, Any]
) -> None:
    """After a write, an answer of a filter derived from the recomputed partials is exactly
    the figures of the raw rows plus the new flight (delays, shares, rounding)."""
    get(writable_client, "hours", origin="LGA", month=5)  # the partials of every year, kept
    flight = new_flight(sched_dep_time=930, dep_time=1001, dep_delay=31)
    created = writable_client.post("/api/v1/flights", json=flight)
    assert created.status_code == 201, created.text
    new_row = {"origin": "JFK", "month": 7, "hour": 9, "dep_time": 1001, "dep_delay": 31,
               "arr_delay": None}  # fmt: skip
    rows = [f for f in raw["flights"] if f["origin"] == "JFK" and f["month"] == 7]
    rows.append(new_row)
    expected = [
        {"hour": hour, **figures(group)} for hour, group in sorted(grouped(rows, "hour").items())
    ]

    def answer() -> list[dict[str, Any]]:
        return get(writable_client, "hours", origin="JFK", month=7)

    assert eventually(answer, lambda a: a == expected) == expected
    before = query_count(writable_client, "stats_hours")
    assert get(writable_client, "hours", origin="EWR")
    assert query_count(writable_client, "stats_hours") == before  # derived, no statement


def test_daily_of_a_carrier_from_every_origin_is_the_figure_of_the_raw_rows(
    client: TestClient, raw: dict[str, Any]
) -> None:
    """stats_daily keeps no rows for a carrier over every origin: the route adds up the
    per-origin rows (api/routes/stats.py, _sums); the same figures as the raw rows."""
    expected = daily_rows([f for f in raw["flights"] if f["carrier"] == "UA"])
    assert get(client, "daily", carrier="UA") == expected
    assert len(expected) == 365


def test_the_warm_up_computes_every_view_before_ready(template_db: Path, tmp_path: Path) -> None:
    """STATS_WARM_UP (default on): each view's statement runs once while the database opens,
    before /readyz says ready; the first answers of the dashboard's scopes then run none.
    (The query metrics are the process's: the counts are deltas over an app without it.)"""
    views = ("carriers", "daily", "hours", "destinations", "weather")
    path = copy_db(template_db, tmp_path)
    with ReadyTestClient(create_app(make_settings(path)), headers=AUTH) as cold:
        before = {v: query_count(cold, f"stats_{v}") for v in views}
    settings = make_settings(path, stats_warm_up=True)
    with ReadyTestClient(create_app(settings), headers=AUTH) as client:
        counts = {v: query_count(client, f"stats_{v}") for v in views}
        assert counts == {v: before[v] + 1 for v in views}
        for view in views:
            assert get(client, view, year=2013) and get(client, view, origin="JFK")
        assert {v: query_count(client, f"stats_{v}") for v in views} == counts
