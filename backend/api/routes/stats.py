"""/api/v1/stats: aggregate figures computed by DuckDB over the flights table.

The dashboard asks for the same aggregates on every page view, so each answer is kept as its
finished JSON body until the next committed write (api/db/cache.py): a repeated request costs
no thread, no DuckDB cursor and no serialization. The body is exactly what the response model
produces (it is built by validating the rows with it).

Every write empties the cache, and the dashboard's filters (origin x month, per year) make
some fifty answers per view. So every view runs ONE statement per view and year that computes
every filter combination at once (GROUP BY CUBE (origin, month or carrier), ...), kept under
the year alone; an answer takes its filter's rows. Carriers: the rows are the answer (the
CUBE computes each combination's p95 over its own flights). Daily, hours, destinations and
weather: the rows are counts and sums per group key, divided here (the same means and shares
the SQL would compute: sums of integer minutes over their counts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from api.db.database import run_query
from api.dependencies import Results, get_database
from api.schemas import (
    AirportFilter,
    CarrierFilter,
    CarrierStatsList,
    DailyStatsList,
    DestinationStatsList,
    HourStatsList,
    WeatherStatsList,
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


def _partials(request: Request, results: Results, name: str, year: int | None) -> Partials:
    """The partials of view `name` for `year`, reused until the next write (computed once
    when concurrent requests miss together). Blocking: call it from a thread."""

    def compute() -> Partials:
        with get_database(request).session() as cursor:
            rows = run_query(cursor, name, {"year": year}).rows
        index: Partials = {}
        for row in rows:
            index.setdefault((row[0], row[1]), []).append(row[2:])
        return index

    return results.reuse_once(("partials", name, year), compute)


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


async def _derived(
    request: Request,
    results: Results,
    name: str,
    params: dict[str, Any],
    second: str,
    derive: Derive,
    model: type[BaseModel],
) -> Response:
    """The answer of partials view `name` for `params` (origin, `second` filter, year)."""
    key = ("body", name, *sorted(params.items()))

    def compute() -> bytes:
        partials = _partials(request, results, name, params["year"])
        sums = _sums(partials, params["origin"], params[second])
        return model.model_validate({"items": derive(sums)}).model_dump_json().encode()

    body = await results.reuse_async(key, compute)
    return Response(body, media_type="application/json")


@router.get("/carriers", response_model=CarrierStatsList)
async def carrier_stats(
    request: Request,
    results: Results,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per carrier (ordered by code): flights, cancelled (no dep_time), mean and p95 arrival
    delay in minutes and on_time_share (arr_delay <= 15) over flights with a known
    arr_delay. Empty `items` when no flight matches the filters. From the year's
    `stats_carriers` rows, reused until the next write."""
    key = ("body", "stats_carriers", origin, month, year)

    def compute() -> bytes:
        partials = _partials(request, results, "stats_carriers", year)
        cell = partials.get((origin, month), [])
        rows = [dict(zip(_CARRIER_COLUMNS, row, strict=True)) for row in cell]
        rows.sort(key=lambda row: row["carrier"])
        return CarrierStatsList.model_validate({"items": rows}).model_dump_json().encode()

    body = await results.reuse_async(key, compute)
    return Response(body, media_type="application/json")


@router.get("/daily", response_model=DailyStatsList)
async def daily_stats(
    request: Request,
    results: Results,
    origin: AirportFilter = None,
    carrier: CarrierFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per scheduled departure date (ordered): flights, mean departure and arrival delay
    (minutes). Reused until the next write."""
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
        request, results, "stats_daily", params, "carrier", derive, DailyStatsList
    )


@router.get("/hours", response_model=HourStatsList)
async def hour_stats(
    request: Request,
    results: Results,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Per scheduled departure hour (0..23 local, ordered; hours without flights are
    absent): flights, cancelled, mean departure and arrival delay (minutes), on_time_share.
    Reused until the next write."""
    params = {"origin": origin, "month": month, "year": year}

    def derive(sums: Sums) -> list[dict[str, Any]]:
        return [{"hour": group[0], **_figures(sums[group])} for group in _ordered(sums)]

    return await _derived(request, results, "stats_hours", params, "month", derive, HourStatsList)


@router.get("/destinations", response_model=DestinationStatsList)
async def destination_stats(
    request: Request,
    results: Results,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DESTINATIONS)] = 20,
) -> Response:
    """The `limit` destinations with the most flights (ordered by flights, then code):
    flights, cancelled, mean arrival delay (minutes), on_time_share; `name` is null for
    destinations absent from the airports table. Reused until the next write."""
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
        request, results, "stats_destinations", params, "month", derive, DestinationStatsList
    )


@router.get("/weather", response_model=WeatherStatsList)
async def weather_stats(
    request: Request,
    results: Results,
    origin: AirportFilter = None,
    month: MonthFilter = None,
    year: YearFilter = None,
) -> Response:
    """Flights by the weather at their origin in their scheduled departure hour, in bands of
    precipitation, visibility and wind speed (docs/api.md): flights, cancelled, mean
    departure and arrival delay (minutes). Flights without a reading are left out. Reused
    until the next write."""
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
        request, results, "stats_weather", params, "month", derive, WeatherStatsList
    )
