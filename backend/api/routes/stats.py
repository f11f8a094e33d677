"""/api/v1/stats: aggregate figures computed by DuckDB over the flights table.

The dashboard asks for the same aggregates on every page view, so each answer is kept as its
finished JSON body until the next committed write (api/db/cache.py): a repeated request costs
no thread, no DuckDB cursor and no serialization. The body is exactly what the response model
produces (it is built by validating the rows with it).
"""

from __future__ import annotations

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


def _body(request: Request, name: str, params: dict[str, Any], model: type[BaseModel]) -> bytes:
    """Run the named query (own cursor) and render `{"items": rows}` through `model`."""
    with get_database(request).session() as cursor:
        rows = run_query(cursor, name, params).dicts()
    return model.model_validate({"items": rows}).model_dump_json().encode()


async def _answer(
    request: Request, results: Results, name: str, params: dict[str, Any], model: type[BaseModel]
) -> Response:
    key = ("body", name, *sorted(params.items()))
    body = await results.reuse_async(key, lambda: _body(request, name, params, model))
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
    arr_delay. Empty `items` when no flight matches the filters. Reused until the next write."""
    params = {"origin": origin, "month": month, "year": year}
    return await _answer(request, results, "stats_carriers", params, CarrierStatsList)


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
    return await _answer(request, results, "stats_daily", params, DailyStatsList)


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
    return await _answer(request, results, "stats_hours", params, HourStatsList)


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
    return await _answer(request, results, "stats_destinations", params, DestinationStatsList)


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
    return await _answer(request, results, "stats_weather", params, WeatherStatsList)
