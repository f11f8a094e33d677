"""/api/v1/stats: aggregate figures computed by DuckDB over the flights table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.db.database import run_query
from api.dependencies import Cursor
from api.schemas import CarrierStatsList, DailyStatsList

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get("/carriers", response_model=CarrierStatsList)
def carrier_stats(
    db: Cursor,
    origin: str | None = None,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
) -> dict[str, Any]:
    """Per carrier (ordered by code): flights, cancelled (no dep_time), mean and p95 arrival
    delay in minutes and on_time_share (arr_delay <= 15) over flights with a known
    arr_delay. Empty `items` when no flight matches the filters."""
    rows = run_query(db, "stats_carriers", {"origin": origin, "month": month}).dicts()
    return {"items": rows}


@router.get("/daily", response_model=DailyStatsList)
def daily_stats(
    db: Cursor, origin: str | None = None, carrier: str | None = None
) -> dict[str, Any]:
    """Per scheduled departure date (ordered): flights and mean departure delay (minutes)."""
    rows = run_query(db, "stats_daily", {"origin": origin, "carrier": carrier}).dicts()
    return {"items": rows}
