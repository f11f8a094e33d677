"""/api/v1/stats: aggregate figures computed by DuckDB over the flights table.

The dashboard's filters (origin x month, per year) make some fifty answers per view. So every
view runs ONE statement per year that computes every filter combination at once (GROUP BY
CUBE (origin, month or carrier), ...): its "partials", kept under the year alone; an answer
takes its filter's rows. Carriers: the rows are the answer (the CUBE computes each
combination's p95 over its own flights). Daily, hours, destinations and weather: the rows are
counts and sums per group key, divided here (the same means and shares the SQL would
compute: sums of integer minutes over their counts).

Freshness: the partials are kept with `ResultCache.refresh_behind` (api/db/cache.py): after a
write, answers keep coming from the partials from before it while ONE background statement
per view and year recomputes them, at most once per `STATS_REFRESH_SECONDS` (default 30);
then the new figures are served. So the figures lag a write by at most that plus one
statement (tens of milliseconds on the demo data, seconds on a loaded machine), and no
request waits for an aggregate after a write. The dashboard's default scope is computed
before the API reports ready (`warm_up`, `STATS_WARM_UP`). Only the first answer of a
view and year after start-up waits for its statement. Each finished JSON body (exactly what
the response model produces) is kept per partials version until the next write: a repeated
request costs no thread, no DuckDB cursor and no serialization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.db.cache import ResultCache
from api.db.database import Database, run_query
from api.dependencies import DataYears, Results, get_database
from api.schemas import (
    AirportFilter,
    CarrierFilter,
    CarrierStatsList,
    DailyStatsList,
    DestinationStatsList,
    HourStatsList,
    WeatherStatsList,
    YearRange,
)

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

# The scope filters of every stats answer (with `origin`): a month (of any year) and a year.
MonthFilter = Annotated[int | None, Query(ge=1, le=12, description="1..12")]
YearFilter = Annotated[int | None, Query(ge=2000, le=2100, description="e.g. 2013")]
# Destinations in one answer: at most every destination (the demo data has 105).
MAX_DESTINATIONS = 200


# The summed figures of a partials row, in the order of queries._STATS_PARTIAL_MEASURES.
_MEASURES = ("flights", "cancelled", "departed", "dep_sum", "arrived", "arr_sum", "on_time")
# The columns of stats_carriers after origin and month (CarrierStats' fields).
_CARRIER_COLUMNS = ("carrier", "name", "flights", "cancelled", "arrived", "mean_arr_delay",
                    "p95_arr_delay", "on_time_share")  # fmt: skip
# A view's partials: (origin, month or carrier; None: every one) -> rows of
# (*group key, *_MEASURES).
Partials = dict[tuple[Any, Any], list[tuple[Any, ...]]]
# Per group key of a view, its measures summed over the partials a filter selects.
Sums = dict[tuple[Any, ...], dict[str, int]]
# A view's answer rows (dicts for its response model) from its groups' summed figures.
Derive = Callable[[Sums], list[dict[str, Any]]]


def _scope_year(years: YearRange, year: int | None) -> int | None:
    """The year whose partials answer `year`: None (every year) also for the data's only
    year. Every write stays inside the data's years (api/schemas.py, YearRange), so while the
    data holds one year, that year and "every year" are the same flights: one statement and
    one recomputation after a write serve both."""
    return None if year is None or years.first == years.last == year else year


# Every view's statement (api/db/queries.py): one per view and year, kept as partials.
VIEWS = ("stats_carriers", "stats_daily", "stats_hours", "stats_destinations", "stats_weather")


def _read_partials(database: Database, name: str, year: int | None) -> Partials:
    """Run view `name`'s statement for `year` (own cursor), its rows indexed by their first
    two columns (origin, month or carrier). Blocking."""
    with database.session() as cursor:
        rows = run_query(cursor, name, {"year": year}).rows
    index: Partials = {}
    for row in rows:
        index.setdefault((row[0], row[1]), []).append(row[2:])
    return index


def _sums(partials: Partials, origin: str | None, second: Any) -> Sums:
    """Per group key, the measures of the flights `origin` and `second` (month or carrier;
    None: every one) select: the statement has a row set for each such filter, except
    stats_daily for a carrier of every origin, added up here from the per-origin rows."""
    width = len(_MEASURES)
    if (origin, second) in partials or origin is not None or second is None:
        selected = [partials.get((origin, second), [])]
    else:
        selected = [rows for (o, s), rows in partials.items() if o is not None and s == second]
    totals: dict[tuple[Any, ...], list[int]] = {}
    for rows in selected:
        for row in rows:
            total = totals.setdefault(row[:-width], [0] * width)
            for i, value in enumerate(row[-width:]):
                total[i] += value or 0  # None: sum() of no known delay
    return {group: dict(zip(_MEASURES, total, strict=True)) for group, total in totals.items()}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _figures(m: dict[str, int]) -> dict[str, Any]:
    """The figures the views share, from summed measures (rounded by the response models)."""
    return {
        "flights": m["flights"],
        "cancelled": m["cancelled"],
        "arrived": m["arrived"],
        "mean_dep_delay": _ratio(m["dep_sum"], m["departed"]),
        "mean_arr_delay": _ratio(m["arr_sum"], m["arrived"]),
        "on_time_share": _ratio(m["on_time"], m["arrived"]),
    }


def _ordered(keys: Iterable[Any]) -> list[Any]:
    """Ascending, None last (as SQL's ORDER BY)."""
    return sorted(keys, key=lambda k: (k is None, k))


def warm_up(results: ResultCache, database: Database, years: YearRange) -> None:
    """Compute every view's partials for the dashboard's default scope before the API says it
    is ready (api/main.py), so neither the first visitors nor a load test's first seconds wait
    for them: "every year", and the last year when the data holds several (the dashboard
    shows the busiest year; the demo data's years are equally busy and the latest wins).
    Blocking; a failure raises (the caller logs it: the requests will try again)."""
    scopes = sorted({None, _scope_year(years, years.last)}, key=lambda y: (y is not None, y))
    for name in VIEWS:
        for year in scopes:

            def read(name: str = name, year: int | None = year) -> Partials:
                return _read_partials(database, name, year)

            results.refresh_behind(("partials", name, year), read)


async def _answer(
    request: Request,
    results: Results,
    years: YearRange,
    name: str,
    params: dict[str, Any],
    rows_of: Callable[[Partials], list[dict[str, Any]]],
    model: type[BaseModel],
) -> Response:
    """The answer of view `name` for `params` (the filters, `year` among them): `rows_of`
    the year's partials, rendered through `model`. The partials are kept with
    `ResultCache.refresh_behind` (after a write, the figures from before it are served while
    one background statement recomputes them); the finished body is kept per partials
    version until the next write, and a hit costs no thread."""
    pkey = ("partials", name, _scope_year(years, params["year"]))
    key = ("body", name, *sorted(params.items()))

    def read() -> Partials:
        return _read_partials(get_database(request), name, pkey[2])

    entry = results.behind(pkey, read)
    body = results.peek((*key, entry[1])) if entry is not None else None
    if body is None:

        def compute() -> bytes:
            partials, version = results.refresh_behind(pkey, read)

            def render() -> bytes:
                items = rows_of(partials)
                return model.model_validate({"items": items}).model_dump_json().encode()

            return results.reuse((*key, version), render)

        body = await run_in_threadpool(compute)
    return Response(body, media_type="application/json")


async def _derived(
    request: Request,
    results: Results,
    years: YearRange,
    name: str,
    params: dict[str, Any],
    second: str,
    derive: Derive,
    model: type[BaseModel],
) -> Response:
    """The answer of partials view `name` for `params` (origin, `second` filter, year): the
    filter's sums (`_sums`) turned into rows by `derive`."""

    def rows_of(partials: Partials) -> list[dict[str, Any]]:
        return derive(_sums(partials, params["origin"], params[second]))

    return await _answer(request, results, years, name, params, rows_of, model)


@router.get("/carriers", response_model=CarrierStatsList)
async def carrier_stats(
    request: Request,
    results: Results,
    years: DataYears,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per carrier (ordered by code): flights, cancelled (no dep_time), mean and p95 arrival
    delay in minutes and on_time_share (arr_delay <= 15) over flights with a known
    arr_delay. Empty `items` when no flight matches the filters. From the year's
    `stats_carriers` rows, kept as described in the module doc."""
    params = {"origin": origin, "month": month, "year": year}

    def rows_of(partials: Partials) -> list[dict[str, Any]]:
        cell = partials.get((origin, month), [])
        rows = [dict(zip(_CARRIER_COLUMNS, row, strict=True)) for row in cell]
        return sorted(rows, key=lambda row: row["carrier"])

    return await _answer(
        request, results, years, "stats_carriers", params, rows_of, CarrierStatsList
    )


@router.get("/daily", response_model=DailyStatsList)
async def daily_stats(
    request: Request,
    results: Results,
    years: DataYears,
    origin: AirportFilter = None,
    carrier: CarrierFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per scheduled departure date (ordered): flights, mean departure and arrival delay
    (minutes). Kept as described in the module doc."""
    params = {"origin": origin, "carrier": carrier, "year": year}

    def derive(sums: Sums) -> list[dict[str, Any]]:
        rows = []
        for group in _ordered(sums):
            fig = _figures(sums[group])
            rows.append({"date": group[0], "flights": fig["flights"],
                         "mean_dep_delay": fig["mean_dep_delay"],
                         "mean_arr_delay": fig["mean_arr_delay"]})  # fmt: skip
        return rows

    return await _derived(
        request, results, years, "stats_daily", params, "carrier", derive, DailyStatsList
    )


@router.get("/hours", response_model=HourStatsList)
async def hour_stats(
    request: Request,
    results: Results,
    years: DataYears,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per scheduled departure hour (0..23 local, ordered; hours without flights are
    absent): flights, cancelled, mean departure and arrival delay (minutes), on_time_share.
    Kept as described in the module doc."""
    params = {"origin": origin, "month": month, "year": year}

    def derive(sums: Sums) -> list[dict[str, Any]]:
        return [{"hour": group[0], **_figures(sums[group])} for group in _ordered(sums)]

    return await _derived(
        request, results, years, "stats_hours", params, "month", derive, HourStatsList
    )


@router.get("/destinations", response_model=DestinationStatsList)
async def destination_stats(
    request: Request,
    results: Results,
    years: DataYears,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DESTINATIONS)] = 20,
) -> Response:
    """The `limit` destinations with the most flights (ordered by flights, then code):
    flights, cancelled, mean arrival delay (minutes), on_time_share; `name` is null for
    destinations absent from the airports table. Kept as described in the module doc."""
    params = {"origin": origin, "month": month, "year": year, "limit": limit}

    def derive(sums: Sums) -> list[dict[str, Any]]:
        busiest = sorted(sums, key=lambda group: (-sums[group]["flights"], group[0]))[:limit]
        rows = []
        for dest, name in busiest:
            fig = _figures(sums[(dest, name)])
            del fig["mean_dep_delay"]
            rows.append({"dest": dest, "name": name, **fig})
        return rows

    return await _derived(
        request, results, years, "stats_destinations", params, "month", derive, DestinationStatsList
    )


@router.get("/weather", response_model=WeatherStatsList)
async def weather_stats(
    request: Request,
    results: Results,
    years: DataYears,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Flights by the weather at their origin in their scheduled departure hour, in bands of
    precipitation, visibility and wind speed (docs/api.md): flights, cancelled, mean
    departure and arrival delay (minutes). Flights without a reading are left out. Kept as
    described in the module doc."""
    params = {"origin": origin, "month": month, "year": year}

    def derive(sums: Sums) -> list[dict[str, Any]]:
        rows = []
        for measure, lower, upper in sorted(sums, key=lambda group: group[:2]):
            fig = _figures(sums[(measure, lower, upper)])
            rows.append({"measure": measure, "lower": lower, "upper": upper,
                         "flights": fig["flights"], "cancelled": fig["cancelled"],
                         "cancelled_share": _ratio(fig["cancelled"], fig["flights"]),
                         "mean_dep_delay": fig["mean_dep_delay"],
                         "mean_arr_delay": fig["mean_arr_delay"]})  # fmt: skip
        return rows

    return await _derived(
        request, results, years, "stats_weather", params, "month", derive, WeatherStatsList
    )
